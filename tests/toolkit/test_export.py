"""The parity gate: a failed gate prints the report, exits non-zero and writes nothing."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.toolkit.conftest import Trained
from toolkit.export import onnx_export
from toolkit.export.onnx_export import export_run
from toolkit.export.parity import Gates
from toolkit_deploy.cli import main
from toolkit_deploy.errors import ParityError, TargetError
from toolkit_deploy.predictor import Predictor


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_unfaithful_export_is_refused_and_nothing_is_written(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export.export_program

    def unfaithful(model: torch.nn.Module, example, opset: int, **options):
        # The classic bug: the serving graph normalises differently from training.
        served = copy.deepcopy(model)
        served.normalize = type(model.normalize)((0.4, 0.5, 0.6), (0.25, 0.25, 0.25))
        return real(served, example, opset, **options)

    monkeypatch.setattr(onnx_export, "export_program", unfaithful)
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(main, ["export", str(trained.run.path), "--out", str(out)])
    assert result.exit_code == 1
    assert "parity FAILED" in result.output and "nothing written" in result.output
    assert "logits differ by more than" in result.output
    assert leftovers(tmp_path) == []


def test_a_gate_too_strict_for_float32_fails_the_same_way(trained: Trained,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    with pytest.raises(ParityError) as caught:
        export_run(trained.run.path, out, gates=Gates(atol=0.0, rtol=0.0))
    report = caught.value.report
    assert not report.passed and report.max_abs_diff > 0
    assert report.top1_agreement == 1.0  # the numbers differ in float32 noise, the decisions not
    assert leftovers(tmp_path) == []


def test_existing_model_is_kept_unless_overwrite(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"keep me")
    result = CliRunner().invoke(main, ["export", str(trained.run.path), "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert out.read_bytes() == b"keep me"


def test_export_options_are_validated(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_run(trained.run.path, tmp_path / "model.bin")
    with pytest.raises(TargetError, match=r"Div .*needs opset 14"):
        export_run(trained.run.path, tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="version like 1.16"):
        export_run(trained.run.path, tmp_path / "m.onnx", target_ort="new")
    with pytest.raises(FileNotFoundError, match="not a complete training run"):
        export_run(tmp_path, tmp_path / "m.onnx")


def test_moved_data_is_named_and_can_be_pointed_at(trained: Trained, tmp_path: Path) -> None:
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(trained.data, moved)
    run = trained.run.path
    info = (run / "run.json").read_text()
    try:
        (run / "run.json").write_text(info.replace(str(trained.data), str(tmp_path / "gone")))
        with pytest.raises(FileNotFoundError, match="pass --data"):
            export_run(run, tmp_path / "a.onnx")
        result = export_run(run, tmp_path / "b.onnx", data_dir=moved, n_samples=8)
        assert result.report.passed and result.report.n_samples == 8
    finally:
        (run / "run.json").write_text(info)


def test_external_data_is_written_next_to_the_model_and_loads_back(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Models over protobuf's 2 GiB limit keep their weights in `<name>.data`; a tiny threshold
    # takes the same path with a small model.
    monkeypatch.setattr(onnx_export, "_PROTO_LIMIT", 1024)
    out = tmp_path / "model.onnx"
    result = export_run(trained.run.path, out, n_samples=16)
    assert result.report.passed
    assert leftovers(tmp_path) == ["model.onnx", "model.onnx.data"]
    import onnx

    proto = onnx.load(out, load_external_data=False)
    locations = {e.value for t in proto.graph.initializer for e in t.external_data
                 if e.key == "location"}
    assert locations == {"model.onnx.data"}  # relative, next to the model
    predictor = Predictor(out)
    assert predictor.spec.parity.passed
    expected = Predictor(trained.export.path)
    files = sorted(trained.data.rglob("*.png"))[:8]
    batch = np.stack([predictor.decode(f) for f in files])
    np.testing.assert_allclose(predictor.run(batch)[0], expected.run(batch)[0], atol=1e-5)


class _Body(torch.nn.Module):
    """A toolkit image model without its normalisation layer: what `export_model` wraps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.head(self.model.pool(self.model.features(x)))


def test_a_parity_failure_names_the_operator_that_diverges(trained: Trained,
                                                           tmp_path: Path) -> None:
    import toolkit
    from tests.toolkit.unfaithful import OP_NAME, TRANSLATIONS, Swish

    model = trained.run.load_model()
    model.features[2] = Swish()  # first activation, exported as x·sigmoid(1.1·x) on purpose
    with pytest.raises(ParityError) as caught:
        toolkit.export_model(_Body(model), torch.zeros(1, 3, 32, 32), labels=trained.run.labels,
                             preprocess=trained.run.preprocess(), out=tmp_path / "m.onnx",
                             samples=trained.data, n_samples=16,
                             export_options={"custom_translation_table": TRANSLATIONS})
    message = str(caught.value)
    first = message.split("ONNX Runtime first differs from PyTorch at these values")[1]
    assert first.splitlines()[1].startswith("  1. value ")
    # The path is the exported wrapper's: outputs → decoder-input layers → the module given.
    assert f"← {OP_NAME} in model.1.model.features.2 (Swish)" in first.splitlines()[1]
    assert "starts here" in first.splitlines()[1]
    assert f"Fix: PyTorch's `{OP_NAME}`" in message
    assert leftovers(tmp_path) == []


def test_an_older_runtime_is_targeted_and_the_converted_file_is_proven(trained: Trained,
                                                                       tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "old.onnx"
    result = CliRunner().invoke(main, ["export", str(trained.run.path), "--out", str(out),
                                       "--target-ort", "1.13", "--samples", "16"])
    assert result.exit_code == 0, result.output
    assert "opset 17" in result.output
    proto = onnx.load(out)
    assert proto.ir_version == 8  # what ONNX Runtime 1.12–1.13 read
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}
    predictor = Predictor(out)
    assert predictor.spec.opset == 17 and predictor.spec.parity.passed
