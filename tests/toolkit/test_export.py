"""The parity gate: a failed gate prints the report, exits non-zero and writes nothing."""

import copy
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tests.toolkit.conftest import Trained
from toolkit.export import onnx_export
from toolkit.export.onnx_export import Gates, export_run
from toolkit_deploy.cli import main
from toolkit_deploy.errors import ParityError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_unfaithful_export_is_refused_and_nothing_is_written(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export._export

    def unfaithful(model: torch.nn.Module, example, opset: int):
        # The classic bug: the serving graph normalises differently from training.
        served = copy.deepcopy(model)
        served.normalize = type(model.normalize)((0.4, 0.5, 0.6), (0.25, 0.25, 0.25))
        return real(served, example, opset)

    monkeypatch.setattr(onnx_export, "_export", unfaithful)
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
    with pytest.raises(ValueError, match="--opset must be >= 18"):
        export_run(trained.run.path, tmp_path / "m.onnx", opset=13)
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
