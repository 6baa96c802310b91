"""The training loop's knobs, each shown to take effect on a real (tiny) run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.toolkit.conftest import TINY
from toolkit.models import create_model
from toolkit.recipe import load_recipe
from toolkit.training.trainer import resume, train

FAST = {**TINY, "model.channels": [4, 8], "model.hidden": [8], "train.batch_size": 16}


def weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return load_file(run / "weights" / f"{which}.safetensors")


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_same_recipe_data_and_seed_give_bit_identical_weights(shapes: Path,
                                                              tmp_path: Path) -> None:
    recipe = load_recipe("image-cnn", {**FAST, "train.epochs": 2, "data.crop_scale": 0.6,
                                       "data.color_jitter": 0.3, "model.dropout": 0.3})
    first = train(recipe, shapes, tmp_path / "a", device="cpu", progress=False).path
    second = train(recipe, shapes, tmp_path / "b", device="cpu", progress=False).path
    assert_identical(weights(first), weights(second))
    # The resume checkpoint too, byte for byte (its metadata once came in a varying order).
    assert ((first / "checkpoint.safetensors").read_bytes()
            == (second / "checkpoint.safetensors").read_bytes())
    other = load_recipe("image-cnn", {**FAST, "train.epochs": 1, "train.seed": 1,
                                      "data.crop_scale": 0.6})
    third = train(other, shapes, tmp_path / "c", device="cpu", progress=False).path
    assert not torch.equal(weights(first)["head.1.weight"], weights(third)["head.1.weight"])


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(shapes: Path,
                                                                      tmp_path: Path) -> None:
    # Decoding every epoch with small batches keeps epochs slow enough to be killed mid-run.
    sets = {**FAST, "train.epochs": 5, "train.batch_size": 4, "data.cache": "none"}
    recipe = load_recipe("image-cnn", sets)
    whole = train(recipe, shapes, tmp_path / "whole", device="cpu", progress=False).path

    run = tmp_path / "killed"
    args = [str(Path(sys.executable).parent / "toolkit"), "train", "image-cnn", "--data",
            str(shapes), "--out", str(run), "--device", "cpu", "-q"]
    args += [f"--set={k}={json.dumps(v)}" for k, v in sets.items()]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 1:
            break
        time.sleep(0.01)
    time.sleep(0.05)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    info = json.loads((run / "run.json").read_text())
    assert info["finished"] is False  # it really was interrupted

    resume(run, device="cpu", progress=False)
    assert_identical(weights(run), weights(whole))
    assert_identical(weights(run, "best"), weights(whole, "best"))
    lines = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="already finished"):
        resume(run, device="cpu", progress=False)


def test_resume_refuses_changed_data(shapes: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    run = train(load_recipe("image-cnn", {**FAST, "train.epochs": 1}), data, tmp_path / "r",
                device="cpu", progress=False).path
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "finished": False}))
    next(data.glob("circle/*.png")).write_bytes(b"changed")
    with pytest.raises(ValueError, match="fingerprint mismatch"):
        resume(run, device="cpu", progress=False)


def test_early_stopping_stops_when_the_monitor_stops_improving(tmp_path: Path) -> None:
    # Two trivially separable classes: validation accuracy reaches 1.0 and cannot improve.
    for label, colour in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(60):
            Image.new("RGB", (16, 16), colour).save(tmp_path / "data" / label / f"{i}.png")
    recipe = load_recipe("image-cnn", {**FAST, "train.epochs": 30, "train.patience": 2,
                                       "train.batch_size": 8, "data.val_fraction": 0.25,
                                       "train.merge_val": "never"})
    run = train(recipe, tmp_path / "data", tmp_path / "run", device="cpu", progress=False).path
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_run"] < 30 and info["stopped_early_at"] == info["epochs_run"]
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # Patience counts from the first epoch at the best accuracy; the best weights come from
    # the last epoch that ties it.
    first = next(e["epoch"] for e in epochs if e["val_accuracy"] == 1.0)
    assert info["epochs_run"] == first + 2 and info["best_epoch"] >= first
    assert epochs[info["best_epoch"] - 1]["val_accuracy"] == 1.0


def test_gradient_clipping_bounds_every_step(shapes: Path, tmp_path: Path) -> None:
    sets = {**FAST, "train.epochs": 1, "optim.name": "sgd", "optim.lr": 1.0,
            "optim.schedule": "constant", "optim.weight_decay": 0.0}
    torch.manual_seed(0)
    initial = create_model(load_recipe("image-cnn", sets), 5).state_dict()

    def moved(clip: float, name: str) -> float:
        recipe = load_recipe("image-cnn", {**sets, "optim.clip_grad_norm": clip})
        run = train(recipe, shapes, tmp_path / name, device="cpu", progress=False).path
        after = weights(run)
        return float(sum(((after[k] - initial[k]).float() ** 2).sum()
                         for k in initial if k.endswith("weight")) ** 0.5)

    steps = -(-int(5 * 24 * 0.8) // 16)
    assert moved(1e-6, "clipped") <= steps * 1e-6 * 1.01
    assert moved(0.0, "free") > 1e-2


def test_bf16_autocast_trains_on_cpu_and_fp16_needs_cuda(shapes: Path, tmp_path: Path) -> None:
    recipe = load_recipe("image-cnn", {**FAST, "train.epochs": 1, "train.precision": "bf16"})
    run = train(recipe, shapes, tmp_path / "bf16", device="cpu", progress=False).path
    assert all(v.dtype in (torch.float32, torch.int64) for v in weights(run).values())
    fp16 = load_recipe("image-cnn", {**FAST, "train.precision": "fp16"})
    with pytest.raises(ValueError, match="fp16' needs CUDA"):
        train(fp16, shapes, tmp_path / "fp16", device="cpu", progress=False)


def test_two_processes_under_torchrun_train_one_model(shapes: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
            "--master-port", str(29500 + os.getpid() % 1000), "--no-python",
            str(Path(sys.executable).parent / "toolkit"), "train", "image-cnn", "--data",
            str(shapes), "--out", str(run), "--device", "cpu", "-q"]
    args += [f"--set={k}={json.dumps(v)}" for k, v in {**FAST, "train.epochs": 2}.items()]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("held-out (test") == 1  # rank 0 alone reports
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 2 and info["finished"] is True
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]  # written once, by rank 0
    assert json.loads((run / "results.json").read_text())["n_samples"] > 0
    assert np.isfinite(json.loads(lines[-1])["train_loss"])


@pytest.mark.parametrize(("monitor", "val", "best", "bad"), [
    # Accuracy never beats epoch 1; epoch 2 ties it, so it is the best (the later epoch), but
    # only a better accuracy resets early stopping.
    ("val_accuracy", [(0.5, 0.9), (0.5, 0.6), (0.4, 0.5)], 2, 2),
    ("val_loss", [(0.5, 0.9), (0.5, 0.6), (0.4, 0.5)], 3, 0),  # loss improves every epoch
])
def test_monitor_picks_the_best_epoch(tmp_path: Path, monitor: str, val: list, best: int,
                                      bad: int) -> None:
    from toolkit.training.checkpoint import LoopState
    from toolkit.training.trainer import Figures, _end_epoch

    recipe = load_recipe("image-cnn", {**FAST, "train.monitor": monitor})
    model = create_model(recipe, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    (tmp_path / "weights").mkdir()
    loop = LoopState()
    sign = {"val_accuracy": 1, "val_loss": -1}[monitor]
    for epoch, (acc, loss) in enumerate(val, start=1):
        loop = _end_epoch(tmp_path, model, optimizer, None, loop, epoch, Figures(1.0, 0.5),
                          Figures(loss, acc), sign, True, recipe, 0.1, False)
    assert loop.best_epoch == best and loop.bad_epochs == bad
    assert load_file(tmp_path / "weights" / "best.safetensors").keys()
