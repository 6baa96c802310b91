"""`toolkit compare`: recorded figures and evaluations side by side."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from tests.deploy.builders import colour_model_proto
from toolkit_deploy.cli import main
from toolkit_deploy.spec import ModelSpec


def test_compare_models_on_the_same_data(colour_model: Path, colour_folder: Path,
                                         tmp_path: Path) -> None:
    # A second model that swaps red and green: it gets those two classes wrong.
    swapped = colour_model_proto(labels=("green", "red", "blue"))
    path = tmp_path / "swapped.onnx"
    onnx.save(swapped, path)
    result = CliRunner().invoke(main, ["compare", str(colour_model), str(path), "--data",
                                       str(colour_folder), "--json"])
    assert result.exit_code == 0, result.output
    good, bad = json.loads(result.output)
    assert good["accuracy"] == 1.0 and good["top-2"] == 1.0 and good["n_samples"] == 9
    assert bad["accuracy"] == 3 / 9 and bad["per_class_f1"]["red"] == 0.0
    table = CliRunner().invoke(main, ["compare", str(colour_model), str(path), "--data",
                                      str(colour_folder)])
    assert "F1 per class" in table.output and "swapped.onnx" in table.output


def test_compare_recorded_figures_of_a_model_without_data(tmp_path: Path) -> None:
    proto = colour_model_proto()
    meta = {p.key: p.value for p in proto.metadata_props}
    spec = ModelSpec.from_metadata(meta)
    provenance = {**spec.provenance, "results": {"split": "test", "n_samples": 40,
                                                 "accuracy": 0.925, "macro_f1": 0.9}}
    meta["toolkit.provenance"] = json.dumps(provenance)
    proto = colour_model_proto(metadata=meta)
    path = tmp_path / "m.onnx"
    onnx.save(proto, path)
    result = CliRunner().invoke(main, ["compare", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.output)
    assert only["accuracy"] == 0.925 and only["parity_top1_agreement"] == 1.0


def test_a_run_folder_needs_the_training_stack_to_be_compared(tmp_path: Path) -> None:
    from toolkit_deploy.cli import training_installed

    if training_installed():
        pytest.skip("the training stack is installed; tests/toolkit/test_run.py covers runs")
    result = CliRunner().invoke(main, ["compare", str(tmp_path)])
    assert result.exit_code == 1 and "needs the training stack" in result.output
