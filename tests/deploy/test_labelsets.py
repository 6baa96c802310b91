"""Multi-label models in the runtime: label-set tables, thresholds, metadata, `Predictor`,
`score` and `evaluate` on a real sigmoid model file (built with onnx, no torch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.deploy.builders import SIZE, write_image
from toolkit_deploy import labelsets, names
from toolkit_deploy.errors import DatasetError, ModelFormatError
from toolkit_deploy.evaluate import evaluate
from toolkit_deploy.metrics import multilabel_metrics
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.spec import ImagePreprocess, ModelSpec, ParityReport

LABELS = ("red", "green", "blue")
THRESHOLDS = (0.5, 0.3, 0.7)


def channel_model(path: Path, thresholds: tuple[float, ...] = THRESHOLDS) -> Path:
    """A multi-label model: label c is on when channel c is bright (sigmoid of mean - 127.5)."""
    scale = numpy_helper.from_array(np.array(10.0 / 255.0, np.float32), "scale")
    shift = numpy_helper.from_array(np.array(5.0, np.float32), "shift")
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("Cast", [names.INPUT], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "shift"], [names.LOGITS]),
        helper.make_node("Sigmoid", [names.LOGITS], [names.PROBABILITIES]),
    ]
    graph = helper.make_graph(
        nodes, "channels",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.UINT8,
                                       [names.BATCH_AXIS, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [names.BATCH_AXIS, 3])
         for n in names.OUTPUTS],
        initializer=[scale, shift, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = ModelSpec(modality="image", labels=LABELS,
                     preprocess=ImagePreprocess(height=SIZE, width=SIZE, resize="stretch"),
                     opset=18, provenance={"recipe": {"name": "test"}},
                     parity=ParityReport(True, 8, (1,), 0, 0, 0, 1.0, 1e-4, 1e-3, 1.0),
                     task="multilabel", thresholds=thresholds)
    helper.set_model_props(model, spec.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


#: colour → its label set under THRESHOLDS (green's 0.3 keeps a dim green, blue's 0.7 drops a
#: mid blue).
COLOURS = {
    (255, 0, 0): ("red",), (255, 255, 0): ("red", "green"), (0, 0, 0): (),
    (0, 110, 0): ("green",), (0, 0, 120): (), (0, 255, 255): ("green", "blue"),
}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A labelled table of images whose true label sets are not all the model's (some wrong)."""
    truth = {(255, 0, 0): "red", (255, 255, 0): "red|green", (0, 0, 0): "",
             (0, 110, 0): "green|blue", (0, 0, 120): "blue", (0, 255, 255): "green|blue"}
    (tmp_path / "images").mkdir()
    with open(tmp_path / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "labels"])
        for i, (colour, labels) in enumerate(truth.items()):
            write_image(tmp_path / "images" / f"{i}.png", colour)
            writer.writerow([f"images/{i}.png", labels])
    return tmp_path


def test_tables_read_separator_lists_and_empty_sets(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("path,labels\na.png,cat|dog\nb.png,\nc.png, dog \n",
                                    encoding="utf-8")
    (tmp_path / "t.jsonl").write_text('{"path": "a.png", "labels": ["cat", "dog"]}\n'
                                      '{"path": "b.png", "labels": []}\n', encoding="utf-8")
    rows = labelsets.read_label_table(tmp_path / "t.csv", "path")
    assert [r.labels for r in rows] == [("cat", "dog"), (), ("dog",)]
    assert rows[0].input == str(tmp_path / "a.png")
    assert [r.labels for r in labelsets.read_label_table(tmp_path / "t.jsonl", "path")] == [
        ("cat", "dog"), ()]


def test_a_table_without_its_columns_names_them(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("file,tags\na.png,cat\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"no column 'path'.*\['file', 'tags'\]"):
        labelsets.read_label_table(tmp_path / "t.csv", "path")
    (tmp_path / "t.jsonl").write_text('{"path": "a.png"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1 has no key 'labels'"):
        labelsets.read_label_table(tmp_path / "t.jsonl", "path")


def test_a_label_outside_training_is_named() -> None:
    rows = [labelsets.LabelSetRow("1", "a", ("cat", "owl"))]
    with pytest.raises(DatasetError, match=r"test.csv has labels \['owl'\]"):
        labelsets.check_known(("cat", "dog"), rows, "test.csv")


def _brute_f1(p: np.ndarray, t: np.ndarray, c: float) -> float:
    pred = p >= c
    tp = (pred & t).sum()
    return 2 * tp / (pred.sum() + t.sum()) if pred.sum() + t.sum() else 0.0


def test_per_label_thresholds_maximise_each_labels_f1() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((200, 4)) < 0.3
    probs = np.clip(truth * 0.3 + rng.random((200, 4)) * 0.7, 0, 1)
    chosen = labelsets.tune_thresholds(probs, truth, "per_label")
    grid = np.linspace(0, 1, 1001)
    for j, c in enumerate(chosen):
        best = max(_brute_f1(probs[:, j], truth[:, j], g) for g in grid)
        assert _brute_f1(probs[:, j], truth[:, j], c) >= best - 1e-12
    (one,) = set(labelsets.tune_thresholds(probs, truth, "global"))
    best = max(_brute_f1(probs.ravel(), truth.ravel(), g) for g in grid)
    assert _brute_f1(probs.ravel(), truth.ravel(), one) >= best - 1e-12
    assert labelsets.tune_thresholds(probs, truth, 0.25) == [0.25] * 4
    # A label without positives in validation keeps the default threshold.
    truth[:, 2] = False
    assert labelsets.tune_thresholds(probs, truth, "per_label")[2] == labelsets.DEFAULT_THRESHOLD


def test_metrics_match_scikit_learn() -> None:
    metrics_ = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    truth = rng.random((300, 5)) < 0.35
    truth[:, 4] = False  # a label without samples: left out of the macro averages
    probs = np.clip(truth * 0.4 + rng.random((300, 5)) * 0.6, 0, 1).round(2)  # with ties
    pred = probs >= 0.5
    got = multilabel_metrics(truth, pred, list("abcde"), probs)
    present = [0, 1, 2, 3]
    assert got["micro_f1"] == pytest.approx(metrics_.f1_score(truth, pred, average="micro"))
    assert got["macro_f1"] == pytest.approx(metrics_.f1_score(
        truth, pred, average="macro", labels=present, zero_division=0))
    assert got["exact_match"] == pytest.approx(metrics_.accuracy_score(truth, pred))
    assert got["hamming_loss"] == pytest.approx(metrics_.hamming_loss(truth, pred))
    assert got["mAP"] == pytest.approx(metrics_.average_precision_score(
        truth[:, present], probs[:, present], average="macro"))
    p, r, f, s = metrics_.precision_recall_fscore_support(truth, pred, zero_division=0)
    for j, label in enumerate("abcde"):
        assert got["per_class"][label] == pytest.approx(
            {"precision": p[j], "recall": r[j], "f1": f[j], "support": s[j]})


def test_the_metadata_holds_the_task_and_thresholds_and_single_label_is_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {p.key: p.value for p in onnx.load(channel_model(tmp_path / "m.onnx")).metadata_props}
    # Format 3: a runtime that reads only single-label files (up to format 2) refuses the file
    # instead of serving its sigmoid outputs as one label's softmax.
    assert json.loads(meta[names.META_FORMAT_VERSION]) == 3
    with monkeypatch.context() as old_runtime:
        old_runtime.setattr(names, "FORMAT_VERSION", 2)
        with pytest.raises(ModelFormatError, match="uses model format 3"):
            ModelSpec.from_metadata(meta)
    assert json.loads(meta[names.META_TASK]) == {
        "type": "multilabel", "thresholds": list(THRESHOLDS), "separator": "|"}
    spec = ModelSpec.from_metadata(meta)
    assert spec.multilabel and spec.thresholds == THRESHOLDS
    single = ModelSpec(modality="image", labels=LABELS, opset=18,
                       preprocess=ImagePreprocess(height=SIZE, width=SIZE))
    assert names.META_TASK not in single.to_metadata()
    assert json.loads(single.to_metadata()[names.META_FORMAT_VERSION]) == 2
    assert not ModelSpec.from_metadata(single.to_metadata()).multilabel
    with pytest.raises(ModelFormatError, match="one threshold in"):
        ModelSpec(modality="image", labels=LABELS, opset=18, task="multilabel",
                  thresholds=(0.5,), preprocess=ImagePreprocess(height=SIZE, width=SIZE))
    meta[names.META_TASK] = json.dumps({"type": "multilabel"})
    with pytest.raises(ModelFormatError, match="'toolkit.task' must be a JSON object"):
        ModelSpec.from_metadata(meta)


def test_predict_returns_label_sets_by_the_files_thresholds(tmp_path: Path) -> None:
    predictor = Predictor(channel_model(tmp_path / "m.onnx"))
    images = [np.full((SIZE, SIZE, 3), c, np.uint8) for c in COLOURS]
    assert predictor.multilabel and predictor.thresholds == THRESHOLDS
    assert predictor.predict(np.stack(images)) == list(COLOURS.values())


def test_score_writes_the_label_set_and_every_probability(tmp_path: Path, data: Path) -> None:
    model = channel_model(tmp_path / "m.onnx")
    score(model, data / "images", tmp_path / "preds.csv", probs=True)
    with open(tmp_path / "preds.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:6] == ["path", "label", "score", "labels", "error", "prob_red"]
    colours = list(COLOURS)
    for row in rows:
        expected = COLOURS[colours[int(Path(row["path"]).stem)]]
        assert row["labels"] == "|".join(expected)
        probs = np.array([float(row[f"prob_{label}"]) for label in LABELS])
        assert row["labels"] == labelsets.join_labels(
            labelsets.label_set(probs, THRESHOLDS, LABELS))


def test_evaluate_gives_label_set_figures_and_a_report(tmp_path: Path, data: Path) -> None:
    metrics_ = pytest.importorskip("sklearn.metrics")
    model = channel_model(tmp_path / "m.onnx")
    result = evaluate(model, data / "labels.csv", report=tmp_path / "report")
    rows = labelsets.read_label_table(data / "labels.csv", "path")
    truth = labelsets.multi_hot(LABELS, [r.labels for r in rows])
    pred = labelsets.multi_hot(LABELS, list(COLOURS.values()))
    assert result["task"] == "multilabel" and result["n_samples"] == 6
    assert result["thresholds"] == list(THRESHOLDS)
    assert result["micro_f1"] == pytest.approx(metrics_.f1_score(truth, pred, average="micro"))
    assert result["hamming_loss"] == pytest.approx(metrics_.hamming_loss(truth, pred))
    assert result["exact_match"] == pytest.approx(metrics_.accuracy_score(truth, pred)) == 4 / 6
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "micro F1" in page and "true green|blue, predicted green" in page


def test_evaluate_names_a_label_the_model_does_not_know(tmp_path: Path, data: Path) -> None:
    (data / "bad.csv").write_text("path,labels\nimages/0.png,red|purple\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"\['purple'\]"):
        evaluate(channel_model(tmp_path / "m.onnx"), data / "bad.csv")
