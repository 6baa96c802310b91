"""Multi-label classification end to end: a table of images with label sets → train
(`train.task = "multilabel"`) → export (parity on every sigmoid) → score without torch, label
set by label set, with the thresholds training chose on the validation split."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.toolkit.conftest import TINY
from toolkit.demo import make_dataset
from toolkit.export.onnx_export import ExportResult, export_run
from toolkit.recipe import load_recipe
from toolkit.run import THRESHOLDS, Run
from toolkit.training.data import split_samples
from toolkit.training.trainer import train
from toolkit_deploy import labelsets, names
from toolkit_deploy.errors import DatasetError

MULTI = {**TINY, "train.task": "multilabel", "train.epochs": 4}


@dataclass(frozen=True)
class Multi:
    data: Path
    run: Run
    export: ExportResult


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Multi:
    root = tmp_path_factory.mktemp("multi")
    make_dataset("shapes-multi", root / "data", per_class=20, seed=2)
    run = train(load_recipe("image-cnn", MULTI), root / "data" / "labels.csv", root / "run",
                device="cpu", progress=False)
    return Multi(root / "data", run, export_run(run.path, root / "model.onnx"))


def test_the_demo_writes_a_table_of_label_sets(multi: Multi) -> None:
    rows = labelsets.read_label_table(multi.data / "labels.csv", "path")
    assert len(rows) == 80 and all(Path(r.input).is_file() for r in rows)
    assert any(not r.labels for r in rows) and any(len(r.labels) > 1 for r in rows)
    assert multi.run.labels == ("circle", "cross", "square", "triangle")


def test_the_split_keeps_every_label_in_train(multi: Multi) -> None:
    split = multi.run.split
    hot = np.array([t for _, t in split.train])
    assert (hot.sum(0) > 0).all()
    assert len(split.val) and len(split.test)
    stored = json.loads((multi.run.path / "split.json").read_text())["train"]
    assert all(len(t) == 4 and set(t) <= {0, 1} for _, t in stored)


def test_export_proves_parity_on_every_sigmoid_and_records_the_thresholds(multi: Multi) -> None:
    report, spec = multi.export.report, multi.export.spec
    assert report.passed and report.top1_agreement == 1.0
    assert report.max_prob_diff < 1e-4
    thresholds = json.loads((multi.run.path / THRESHOLDS).read_text())["thresholds"]
    assert spec.multilabel and list(spec.thresholds) == thresholds
    results = json.loads((multi.run.path / "results.json").read_text())
    assert results["thresholds"] == thresholds and results["task"] == "multilabel"
    for key in ("micro_f1", "macro_f1", "mAP", "exact_match", "hamming_loss"):
        assert 0 <= results[key] <= 1


def test_the_thresholds_are_those_tuned_on_validation(multi: Multi) -> None:
    from toolkit.training.data import DecodedFiles
    from toolkit_deploy.decoders import create_decoder

    run = multi.run
    model = run.load_model()
    decoder = create_decoder("image", run.preprocess())
    files = DecodedFiles(split_samples(run.data_dir, run.split.val, run.recipe.data), decoder)
    x = torch.stack([files[i][0] for i in range(len(files))])
    truth = np.array([t for _, t in run.split.val]) > 0
    with torch.no_grad():
        probs = torch.sigmoid(model(x)).numpy()
    assert labelsets.tune_thresholds(probs, truth, "per_label") == list(run.thresholds())


def test_scoring_without_torch_gives_pytorchs_label_sets(multi: Multi, tmp_path: Path) -> None:
    run = multi.run
    held = split_samples(run.data_dir, run.split.test, run.recipe.data)
    folder = tmp_path / "held"
    folder.mkdir()
    for p in held.sources:
        (folder / Path(p).name).write_bytes(Path(p).read_bytes())
    out = tmp_path / "preds.csv"
    # A fresh interpreter that cannot import torch: the runtime alone.
    code = ("import sys; sys.modules['torch'] = None; from toolkit_deploy.score import score; "
            f"score({str(multi.export.path)!r}, {str(folder)!r}, {str(out)!r}, probs=True)")
    subprocess.run([sys.executable, "-c", code], check=True)
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(held) and not any(r["error"] for r in rows)
    from toolkit.training.data import DecodedFiles
    from toolkit_deploy.decoders import create_decoder

    files = DecodedFiles(held, create_decoder("image", run.preprocess()))
    with torch.no_grad():
        probs = torch.sigmoid(run.load_model()(
            torch.stack([files[i][0] for i in range(len(files))]))).numpy()
    expected = [labelsets.join_labels(labelsets.label_set(p, run.thresholds(), run.labels))
                for p in probs]
    by_path = {Path(r["path"]).name: r["labels"] for r in rows}
    assert [by_path[Path(p).name] for p in held.sources] == expected


def test_evaluate_of_the_run_and_of_its_file_agree(multi: Multi) -> None:
    from toolkit.evaluation import evaluate_run
    from toolkit_deploy.evaluate import evaluate

    table = multi.data / "labels.csv"
    a, b = evaluate(multi.export.path, table), evaluate_run(multi.run.path, table, device="cpu")
    for key in ("micro_f1", "macro_f1", "exact_match", "hamming_loss", "n_samples"):
        assert a[key] == pytest.approx(b[key], abs=1e-6)


def _table(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("path", "labels"), *rows])


def test_a_label_only_in_test_is_an_error_naming_it(multi: Multi, tmp_path: Path) -> None:
    images = sorted((multi.data / "images").glob("*.png"))
    data = tmp_path / "split"
    data.mkdir()
    (data / "images").symlink_to(multi.data / "images")
    _table(data / "train.csv", [(f"images/{p.name}", "circle") for p in images[:6]])
    _table(data / "test.csv", [(f"images/{images[7].name}", "circle|hexagon")])
    with pytest.raises(DatasetError, match=r"test.csv has labels \['hexagon'\]"):
        train(load_recipe("image-cnn", MULTI), data, tmp_path / "run", device="cpu",
              progress=False)
    assert not (tmp_path / "run").exists()


def test_a_table_without_the_labels_column_says_what_it_needs(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("path,label\na.png,cat\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no column 'labels'.*joined by '\|'"):
        train(load_recipe("image-cnn", MULTI), tmp_path / "t.csv", tmp_path / "run",
              device="cpu", progress=False)


def test_the_task_and_threshold_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="train.task"):
        load_recipe("image-cnn", {"train.task": "multi"})
    with pytest.raises(ValueError, match="train.threshold"):
        load_recipe("image-cnn", {"train.threshold": 1.5})
    assert load_recipe("text-bag", {"train.threshold": "global"}).train.threshold == "global"
    assert names.META_TASK == "toolkit.task"


def test_a_text_recipe_trains_on_a_jsonl_of_label_sets(tmp_path: Path) -> None:
    from toolkit_deploy.predictor import Predictor

    words = {"price": "cheap expensive cost price refund", "ship": "late delivery parcel ship",
             "size": "small large fits tight size"}
    rng = np.random.default_rng(0)
    lines = []
    for i in range(60):
        chosen = [k for k in words if rng.random() < 0.45]
        text = " ".join(rng.permutation(" ".join(words[k] for k in chosen).split()).tolist())
        lines.append(json.dumps({"text": f"row {i} {text}", "labels": chosen}))
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = load_recipe("text-bag", {"train.task": "multilabel", "train.epochs": 3,
                                      "train.threshold": "global", "data.vocab_size": 64,
                                      "data.max_length": 16})
    run = train(recipe, tmp_path / "t.jsonl", tmp_path / "run", device="cpu", progress=False)
    assert run.labels == ("price", "ship", "size") and len(set(run.thresholds())) == 1
    result = export_run(run.path, tmp_path / "m.onnx")
    assert result.report.passed and result.spec.multilabel
    sets = Predictor(tmp_path / "m.onnx").predict(["cheap refund late parcel", "hello"])
    assert all(isinstance(s, tuple) and set(s) <= set(run.labels) for s in sets)
