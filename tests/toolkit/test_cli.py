import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.toolkit.conftest import TINY, Trained
from toolkit_deploy.cli import main


@pytest.mark.parametrize("command", [["data"], ["data", "make"], ["recipes"], ["train"],
                                     ["export"]])
def test_help_of_training_commands(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_recipes_lists_and_shows() -> None:
    listing = CliRunner().invoke(main, ["recipes"])
    assert listing.exit_code == 0
    names = [line.split()[0] for line in listing.output.splitlines()]
    assert names == ["audio-cnn", "image-cnn", "text-bag", "text-encoder", "video-cnn"]
    shown = CliRunner().invoke(main, ["recipes", "image-cnn"])
    assert "[optim]" in shown.output and "lr =" in shown.output
    missing = CliRunner().invoke(main, ["recipes", "nope"])
    assert missing.exit_code == 1 and "Built-in recipes: audio-cnn, image-cnn," in missing.output


def test_data_make_writes_and_refuses_to_mix(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    result = CliRunner().invoke(main, ["data", "make", "shapes", str(out), "--per-class", "2"])
    assert result.exit_code == 0 and "wrote 10 files" in result.output
    again = CliRunner().invoke(main, ["data", "make", "shapes", str(out)])
    assert again.exit_code == 1 and str(out) in again.output


def test_train_cli_with_overrides_and_errors(trained: Trained, tmp_path: Path) -> None:
    sets = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items() if k != "train.epochs"]
    out = tmp_path / "run"
    args = ["train", "image-cnn", "--data", str(trained.data), "--out", str(out), *sets,
            "--epochs", "1", "--seed", "3", "--device", "cpu", "-q",
            "--set", "model.activation=tanh"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "held-out (test" in result.output
    resolved = (out / "recipe.toml").read_text()
    assert 'activation = "tanh"' in resolved and "epochs = 1" in resolved and "seed = 3" in resolved
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "--overwrite" in refused.output
    bad = CliRunner().invoke(main, [*args[:6], "--set", "optim.lrr=1"])
    assert bad.exit_code == 1 and "Valid keys of [optim]: name, lr" in bad.output


def test_cuda_on_a_machine_without_is_an_error(trained: Trained, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(main, ["train", "image-cnn", "--data", str(trained.data),
                                       "--out", str(tmp_path / "r"), "--device", "cuda"])
    assert result.exit_code == 1 and "torch sees no CUDA device" in result.output
    assert not (tmp_path / "r").exists()


def test_train_argument_combinations(trained: Trained) -> None:
    missing = CliRunner().invoke(main, ["train"])
    assert missing.exit_code == 2 and "Missing RECIPE, --data, --out" in missing.output
    mixed = CliRunner().invoke(main, ["train", "--resume", str(trained.run.path),
                                      "--set", "optim.lr=1"])
    assert mixed.exit_code == 2 and "drop --set" in mixed.output
    done = CliRunner().invoke(main, ["train", "--resume", str(trained.run.path)])
    assert done.exit_code == 1 and "already finished" in done.output
