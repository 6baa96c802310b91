"""Fixtures of the training-stack tests: one tiny dataset, run and export shared by the session,
so the suite trains and exports once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from toolkit.demo import make_dataset
from toolkit.export.onnx_export import ExportResult, export_run
from toolkit.recipe import load_recipe
from toolkit.run import Run
from toolkit.training.trainer import train

#: Small enough to train in seconds on 2 cores, big enough to learn something.
TINY = {"data.image_size": 32, "data.channels": 3, "model.channels": [8, 16, 32],
        "model.hidden": [32],
        "train.epochs": 3, "train.batch_size": 32, "optim.warmup_epochs": 0}


@dataclass(frozen=True)
class Trained:
    data: Path
    run: Run
    export: ExportResult


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes") / "data"
    make_dataset("shapes", root, per_class=24, seed=1)
    return root


@pytest.fixture(scope="session")
def trained(shapes: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("run")
    run = train(load_recipe("image-cnn", TINY), shapes, out / "run", device="cpu",
                progress=False)
    result = export_run(run.path, out / "model.onnx")
    return Trained(shapes, run, result)
