"""Hostile checkpoints: a pickle put where toolkit expects weights is refused, never unpickled.

Each planted file runs `touch MARKER` when unpickled (the classic `__reduce__` payload, as a bare
pickle and inside torch.save's zip format); the first test proves the payload is live, the others
that toolkit refuses the file with a clear error and the marker never appears.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from tests.toolkit.conftest import Trained
from toolkit.export.onnx_export import export_run
from toolkit.run import load_run
from toolkit.training.trainer import resume
from toolkit_deploy.cli import main
from toolkit_deploy.errors import ModelFormatError


class Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch '{self.marker}'",)


def plant(path: Path, marker: Path, kind: str) -> Path:
    """Write a hostile checkpoint at `path`: a bare pickle, or torch.save's zip holding one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"conv.weight": Payload(marker)}, protocol=2))
    else:
        torch.save({"conv.weight": Payload(marker)}, path)
    return path


KINDS = ["pickle", "torch.save"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_payload_is_live(kind: str, tmp_path: Path) -> None:
    """The control: unpickled the usual way, the planted file does run its command."""
    marker = tmp_path / "MARKER"
    evil = plant(tmp_path / "evil.pt", marker, kind)
    if kind == "pickle":
        pickle.loads(evil.read_bytes())
    else:
        torch.load(evil, weights_only=False)
    assert marker.exists()


def copy_run(trained: Trained, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained.run.path, run)
    return run


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_in_place_of_the_best_weights_is_refused(trained: Trained, tmp_path: Path,
                                                        kind: str) -> None:
    run = copy_run(trained, tmp_path)
    marker = tmp_path / "MARKER"
    weights = plant(run / "weights" / "best.safetensors", marker, kind)
    what = "a Python pickle" if kind == "pickle" else "a zip archive"
    with pytest.raises(ModelFormatError, match=f"{weights} is not a safetensors file: it is "
                                               f"{what}.*never unpickles"):
        load_run(run).load_model()
    out = tmp_path / "model.onnx"
    with pytest.raises(ModelFormatError, match="not a safetensors file"):
        export_run(run, out)
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "is not a safetensors file" in result.output and "Traceback" not in result.output
    evaluated = CliRunner().invoke(main, ["evaluate", str(run), "--data", str(trained.data)])
    assert evaluated.exit_code == 1 and "is not a safetensors file" in evaluated.output
    assert not out.exists()
    assert not marker.exists()


def test_pickle_in_place_of_the_checkpoint_is_refused_on_resume(trained: Trained,
                                                                tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "finished": False}))
    marker = tmp_path / "MARKER"
    plant(run / "checkpoint.safetensors", marker, "torch.save")
    with pytest.raises(ModelFormatError, match="checkpoint.safetensors is not a safetensors "
                                               "file: it is a zip archive"):
        resume(run, data_dir=trained.data, device="cpu", progress=False)
    result = CliRunner().invoke(main, ["train", "--resume", str(run), "--data", str(trained.data),
                                       "--device", "cpu", "-q"])
    assert result.exit_code == 1 and "never unpickles" in result.output
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth"])
def test_a_pytorch_checkpoint_given_as_run_or_model_is_refused(trained: Trained, tmp_path: Path,
                                                              suffix: str) -> None:
    marker = tmp_path / "MARKER"
    evil = plant(tmp_path / f"evil{suffix}", marker, "torch.save")
    out = tmp_path / "model.onnx"
    with pytest.raises(FileNotFoundError, match="expected a run folder.*is a pickle, which "
                                                "toolkit never loads"):
        export_run(evil, out)
    runner = CliRunner()
    exported = runner.invoke(main, ["export", str(evil), "--out", str(out)])
    assert exported.exit_code == 2 and "is a file" in exported.output
    resumed = runner.invoke(main, ["train", "--resume", str(evil)])
    assert resumed.exit_code == 2 and "is a file" in resumed.output
    # Given where a model file goes, it is parsed as ONNX (never unpickled) and refused.
    for args in (["evaluate", str(evil), "--data", str(trained.data)],
                 ["score", str(evil), str(trained.data), "--out", str(tmp_path / "p.csv")],
                 ["inspect", str(evil)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, (args, result.output)
        assert "not a valid ONNX protobuf" in result.output, result.output
    assert not out.exists()
    assert not marker.exists()


def test_weights_of_another_model_are_refused(trained: Trained, tmp_path: Path) -> None:
    run = copy_run(trained, tmp_path)
    save_file({"head.weight": torch.zeros(3, 3)}, run / "weights" / "best.safetensors")
    with pytest.raises(ModelFormatError, match="do not fit the model of this run's recipe"):
        load_run(run).load_model()


@pytest.mark.parametrize("kind", KINDS)
def test_score_or_inspect_of_a_pickle_says_what_it_is_and_never_opens_it(
        trained: Trained, tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "MARKER"
    evil = plant(tmp_path / "model.pt", marker, kind)
    what = "a Python pickle" if kind == "pickle" else "a zip archive"
    for args in (["score", str(evil), str(trained.data), "--out", str(tmp_path / "p.csv")],
                 ["inspect", str(evil)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert f"it is {what}" in result.output and "never unpickles" in result.output
        assert "Traceback" not in result.output
    assert not marker.exists() and not (tmp_path / "p.csv").exists()
