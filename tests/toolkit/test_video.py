"""Video end to end: demo data, augmentation, train → export (parity) → score in processes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from toolkit.demo.motion import MOTION_CLASSES, make_motion
from toolkit.export.onnx_export import export_run
from toolkit.recipe import load_recipe
from toolkit.training.augment import augment
from toolkit.training.trainer import train
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score

TINY_VIDEO = {"data.frames": 4, "data.image_size": 24, "model.channels": [8, 16],
              "model.hidden": [16], "train.epochs": 3, "optim.warmup_epochs": 0}


def test_motion_demo_data(tmp_path: Path) -> None:
    assert make_motion(tmp_path / "a", per_class=6, seed=4) == 6 * len(MOTION_CLASSES)
    files = sorted((tmp_path / "a").rglob("*.*"))
    assert sorted({p.parent.name for p in files}) == sorted(MOTION_CLASSES)
    assert {p.suffix for p in files} == {".mp4", ".webm"}
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert 12 <= len(frames) <= 20 and frames[0].shape == (96, 96, 3)
        if path.parent.name == "grow":  # the shape covers more of the picture as it grows
            background = frames[0][0, 0].astype(int)
            covered = [int((np.abs(f.astype(int) - background).sum(axis=2) > 60).sum())
                       for f in (frames[0], frames[-1])]
            assert covered[1] > covered[0]


def test_same_seed_same_frames() -> None:
    # The frames drawn; encoders (threaded colour conversion) may not repeat their bytes exactly.
    from toolkit.demo.motion import _clip

    for kind in MOTION_CLASSES:
        a, fps_a = _clip(kind, np.random.default_rng([1, 2, 3]))
        b, fps_b = _clip(kind, np.random.default_rng([1, 2, 3]))
        assert fps_a == fps_b and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        c, _ = _clip(kind, np.random.default_rng([1, 2, 4]))
        assert not np.array_equal(a[0], c[0])


def test_video_flip_is_the_whole_clip() -> None:
    data = load_recipe("video-cnn", {"data.flip": "horizontal"}).data
    clips = torch.randint(0, 255, (16, 4, 6, 6, 3), dtype=torch.uint8)
    out = augment(clips, data, torch.Generator().manual_seed(0))
    flipped = [not torch.equal(a, b) for a, b in zip(out, clips, strict=True)]
    assert any(flipped) and not all(flipped)
    for a, b, f in zip(out, clips, flipped, strict=True):
        assert torch.equal(a, b.flip(2) if f else b)  # every frame of a clip alike


@pytest.fixture(scope="module")
def motion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("motion") / "data"
    make_motion(root, per_class=8, seed=3)
    return root


def test_train_export_and_score_clips(motion: Path, tmp_path: Path) -> None:
    run = train(load_recipe("video-cnn", TINY_VIDEO), motion, tmp_path / "run", device="cpu",
                progress=False)
    assert json.loads((run.path / "results.json").read_text())["n_samples"] == len(run.split.test)
    result = export_run(run.path, tmp_path / "model.onnx")
    report = result.report
    assert report.passed and report.top1_agreement == 1.0 and report.max_abs_diff <= 1e-4
    assert report.batch_sizes == (1, 16)
    predictor = Predictor(result.path)
    assert predictor.spec.input_spec == {"name": "input", "dtype": "uint8",
                                         "shape": ["batch", 4, 24, 24, 3]}
    summary = score(predictor, motion, tmp_path / "p.csv", progress=False)
    assert summary.n_scored == 8 * len(MOTION_CLASSES) and summary.n_failed == 0
    with open(tmp_path / "p.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # Served (decoded in worker processes) = PyTorch on the same decoded clips.
    model = run.load_model()
    clips = np.stack([predictor.decode(motion / r["path"]) for r in rows])
    with torch.no_grad():
        labels = model(torch.from_numpy(clips)).argmax(1).tolist()
    assert [r["label"] for r in rows] == [run.labels[i] for i in labels]
