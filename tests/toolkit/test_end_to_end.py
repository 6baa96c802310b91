"""Train → export → score round trip on tiny data: the ONNX model served by the runtime agrees
with the PyTorch model of the run, file by file."""

import csv
import json
from pathlib import Path

import numpy as np
import onnx
from click.testing import CliRunner
from safetensors import safe_open

from tests.toolkit.conftest import Trained
from toolkit.evaluation import evaluate_run
from toolkit.run import load_run
from toolkit_deploy import names
from toolkit_deploy.cli import main
from toolkit_deploy.evaluate import evaluate
from toolkit_deploy.predictor import Predictor


def test_run_folder_has_what_the_design_lists(trained: Trained) -> None:
    path = trained.run.path
    for name in ("recipe.toml", "labels.json", "split.json", "metrics.jsonl", "results.json",
                 "run.json", "weights/best.safetensors", "weights/last.safetensors"):
        assert (path / name).is_file(), name
    assert not list(path.rglob("*.pt")) and not list(path.rglob("*.pth"))  # no pickles
    with safe_open(path / "weights/best.safetensors", "pt") as f:
        assert any(k.startswith("features.") for k in f.keys())
    epochs = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    split = json.loads((path / "split.json").read_text())
    assert split["source"] == "random" and len(split["train"]) + len(split["val"]) + len(
        split["test"]) == 5 * 24
    assert not set(map(tuple, split["train"])) & set(map(tuple, split["test"]))
    results = json.loads((path / "results.json").read_text())
    assert results["split"] == "test" and results["n_samples"] == len(split["test"])
    info = json.loads((path / "run.json").read_text())
    assert len(info["data_fingerprint"]) == 64 and info["finished"] is True


def test_model_rebuilds_from_the_run_folder_alone(trained: Trained) -> None:
    again = load_run(trained.run.path)
    assert again.recipe == trained.run.recipe and again.labels == trained.run.labels


def test_scores_agree_with_pytorch_file_by_file(trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    result = CliRunner().invoke(main, ["score", str(trained.export.path), str(trained.data),
                                       "--out", str(out), "--top-k", "2"])
    assert result.exit_code == 0, result.output
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 * 24
    model = trained.run.load_model()
    decoder_paths = [trained.data / r["path"] for r in rows]
    from toolkit.evaluation import TorchModel

    torch_model = TorchModel(model, Predictor(trained.export.path).decoder, trained.run.labels,
                             None, trained.run.path)
    _, torch_probs = torch_model.run(np.stack([torch_model.decode(p) for p in decoder_paths]))
    for row, probs in zip(rows, torch_probs, strict=True):
        assert row["label"] == trained.run.labels[int(probs.argmax())]
        assert abs(float(row["score"]) - float(probs.max())) < 1e-5


def test_exported_file_is_self_describing(trained: Trained) -> None:
    proto = onnx.load(trained.export.path)
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta[names.META_LABELS]) == list(trained.run.labels)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == names.BATCH_AXIS and [d.dim_value for d in dims[1:]] == [32, 32, 3]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    result = CliRunner().invoke(main, ["inspect", str(trained.export.path), "--json"])
    info = json.loads(result.output)
    parity = info["parity"]
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    assert parity["max_abs_diff"] <= 1e-4 and parity["batch_sizes"] == [1, 16]
    assert parity["n_samples"] == len(trained.run.split.test)
    assert info["provenance"]["data_fingerprint"] == trained.run.info["data_fingerprint"]
    assert info["opset"] >= 18 and info["producer"]["torch"]


def test_evaluate_gives_the_same_figures_for_the_run_and_its_onnx(trained: Trained) -> None:
    from_onnx = evaluate(trained.export.path, trained.data)
    from_run = evaluate_run(trained.run.path, trained.data, device="cpu")
    for key in ("accuracy", "macro_f1", "confusion_matrix", "n_samples"):
        assert from_onnx[key] == from_run[key], key
    result = CliRunner().invoke(main, ["evaluate", str(trained.run.path), "--data",
                                       str(trained.data), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] == from_run["accuracy"]
