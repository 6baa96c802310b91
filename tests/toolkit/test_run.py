"""The run folder's recorded figures (`toolkit.run.run_figures`), which the runtime's `toolkit
compare` reads through the `toolkit.run_folders` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from click.testing import CliRunner

from tests.deploy.builders import colour_model_proto
from toolkit_deploy.cli import main
from toolkit_deploy.spec import ModelSpec


def test_compare_recorded_figures_without_data(tmp_path: Path) -> None:
    proto = colour_model_proto()
    meta = {p.key: p.value for p in proto.metadata_props}
    spec = ModelSpec.from_metadata(meta)
    provenance = {**spec.provenance, "results": {"split": "test", "n_samples": 40,
                                                 "accuracy": 0.925, "macro_f1": 0.9}}
    meta["toolkit.provenance"] = json.dumps(provenance)
    proto = colour_model_proto(metadata=meta)
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps({
        "split": "test", "n_samples": 40, "accuracy": 0.95, "macro_f1": 0.94, "weighted_f1": 0.95,
        "top_k_accuracy": {"2": 1.0}, "per_class": {}}))
    result = CliRunner().invoke(main, ["compare", str(run), str(path), "--json"])
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.output)
    assert (first["accuracy"], first["top-2"]) == (0.95, 1.0)
    assert second["accuracy"] == 0.925 and second["parity_top1_agreement"] == 1.0
    missing = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert missing.exit_code == 1 and "no results.json" in missing.output
