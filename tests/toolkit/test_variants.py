"""Export variants: INT8 (static QDQ for convolutions, dynamic for text), FP16 and the optimised
graph, each proven before it is written, and refused with the figures when a gate fails."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner
from PIL import Image

from tests.toolkit.conftest import Trained
from tests.toolkit.test_text import TINY_TEXT, write_chinese
from toolkit.cli.export import export as export_command
from toolkit.export.int8 import float_nodes, learnt_names, quantize_int8
from toolkit.export.onnx_export import export_proven, export_run
from toolkit.export.parity import DEFAULT_GATES
from toolkit.export.samples import calibration_samples
from toolkit.export.variants import FP16_TOLERANCE, Variant
from toolkit.models.cnn import ImageNormalize
from toolkit.recipe import load_recipe
from toolkit.training.data import Samples
from toolkit.training.trainer import train
from toolkit_deploy.cli import main
from toolkit_deploy.errors import ParityError
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import ImagePreprocess, ModelSpec

INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def ops(path: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(path).graph.node)


def variant_of(path: Path) -> dict:
    return Predictor(path).spec.provenance["variant"]


def decoded(predictor: Predictor, samples: Samples) -> np.ndarray:
    return np.stack([predictor.decode(s) for s in samples.sources])


def test_int8_image_graph_is_static_qdq_with_float_preprocessing_stem_and_logits(
        trained: Trained, tmp_path: Path) -> None:
    fp32 = Predictor(trained.export.path)
    calibration = decoded(fp32, calibration_samples(trained.run, trained.data, n=40))
    (tmp_path / "work").mkdir()
    graph, method, kept, n = quantize_int8(onnx.load(trained.export.path),
                                        learnt_names(trained.run.load_model()), calibration,
                                        tmp_path / "work")
    assert "static QDQ" in method and "40 training inputs" in method and n == 40
    kinds = Counter(n.op_type for n in graph.graph.node)
    assert kinds["QuantizeLinear"] >= 2 and kinds["DequantizeLinear"] >= 4
    inits = {i.name: i for i in graph.graph.initializer}
    convs = [n for n in graph.graph.node if n.op_type == "Conv"]
    # The stem reads its float weight directly; every later convolution reads dequantized int8.
    assert convs[0].input[1] in inits and inits[convs[0].input[1]].data_type == 1
    producers = {o: n for n in graph.graph.node for o in n.output}
    for conv in convs[1:]:
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear" and inits[dq.input[0]].data_type in INT8_TYPES
    # The preprocessing (uint8 → float, mean/std) and the logits layer stay float.
    pre = {"Transpose", "Cast", "Div", "Sub"}
    assert pre <= {n.op_type for n in graph.graph.node if n.name in kept}
    logits = producers["logits"]
    assert logits.op_type == "Gemm" and inits[logits.input[1]].data_type == 1
    # The stem pools before its (monotone) activation, so the float stage ends in the ReLU.
    stem_out = [n for n in graph.graph.node if convs[0].output[0] in n.input]
    assert [n.op_type for n in stem_out] == ["MaxPool"]

    # It runs through the runtime and decides like FP32 on the held-out samples.
    onnx.helper.set_model_props(graph, fp32.spec.to_metadata())
    onnx.save_model(graph, tmp_path / "int8.onnx")
    int8 = Predictor(tmp_path / "int8.onnx")
    name, items = trained.run.split.held_out
    sources = [trained.data / rel for rel, _ in items]
    probs = int8.predict_proba(sources)
    assert np.allclose(probs.sum(1), 1, atol=1e-5)
    agreement = (probs.argmax(1) == fp32.predict_proba(sources).argmax(1)).mean()
    assert agreement >= 0.9


@pytest.fixture(scope="module")
def recipe_sized_run(trained: Trained, tmp_path_factory: pytest.TempPathFactory):
    """The image recipe's own network (64×64, four stages): large enough for INT8 to be faster
    than FP32 on a CPU (×1.8 measured at batch 32, benchmarks/quantize.py); the fixture's tiny
    network is not."""
    out = tmp_path_factory.mktemp("cnn64") / "run"
    return train(load_recipe("image-cnn", {"train.epochs": 1, "optim.warmup_epochs": 0}),
                 trained.data, out, device="cpu", progress=False)


def test_int8_export_prints_both_side_by_side_and_writes_only_a_proven_file(
        recipe_sized_run, trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    # The accuracy gate is opened wide: one epoch of training leaves decisions near ties.
    result = CliRunner().invoke(main, ["export", str(recipe_sized_run.path), "--out", str(out),
                                       "--quantize", "int8", "--max-accuracy-drop", "100"])
    assert "FP32" in result.output and "INT8" in result.output
    assert "held-out accuracy" in result.output and "inputs/s @ batch 32" in result.output
    assert "static QDQ" in result.output
    if result.exit_code != 0:
        # A model this small may be no faster in INT8: the speed gate refuses it, alone.
        assert "INT8 variant refused, nothing written" in result.output
        assert "not faster than FP32 at batch 32" in result.output
        assert "accuracy dropped" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == []
        return
    assert sorted(p.name for p in tmp_path.iterdir()) == ["int8.onnx"]
    kinds = ops(out)
    assert kinds["QuantizeLinear"] and kinds["DequantizeLinear"]
    assert any(i.data_type == onnx.TensorProto.INT8 for i in onnx.load(out).graph.initializer)
    figures = variant_of(out)
    assert figures["kind"] == "int8" and figures["passed"] and figures["speedup"] > 1
    assert figures["calibration_samples"] > 0 and figures["batch_size"] == 32
    assert figures["provider"] == "CPUExecutionProvider"
    parity = Predictor(out).spec.parity
    assert parity.passed and not parity.gated
    # Scores through the runtime; inspect shows the variant.
    scored = CliRunner().invoke(main, ["score", str(out), str(trained.data), "--out",
                                       str(tmp_path / "p.csv"), "-q"])
    assert scored.exit_code == 0, scored.output
    shown = CliRunner().invoke(main, ["inspect", str(out)])
    assert "variant    INT8: static QDQ" in shown.output and "(not gated)" in shown.output


class NearTie(nn.Module):
    """Two classes whose scores differ by 0.01 %: float32 tells them apart on every image, 8-bit
    activations cannot, so INT8 ties them (argmax: the first class) on most images."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.normalize = ImageNormalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv = nn.Conv2d(4, 2, 3, padding=1)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            self.stem.bias.fill_(1.0)  # positive activations: the scores below are > 0
            self.conv.weight.abs_()
            self.conv.bias.fill_(0.5)
            self.conv.weight[1] = self.conv.weight[0] * 1.0001
            self.conv.bias[1] = self.conv.bias[0] * 1.0001
            self.head.weight.copy_(torch.eye(2))
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(torch.relu(self.stem(self.normalize(x)))))
        return self.head(x.amax(dim=(2, 3)))


def write_images(folder: Path, n: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_the_accuracy_gate_refuses_an_int8_model_that_changes_decisions(tmp_path: Path) -> None:
    model = NearTie().eval()
    held_out = write_images(tmp_path / "held-out", 24, seed=1)
    train_images = write_images(tmp_path / "train", 32, seed=2)
    # FP32 picks the second class on every image (its score is 1.0001× the first's).
    spec = ModelSpec(modality="image", labels=("first", "second"),
                     preprocess=ImagePreprocess(height=16, width=16), opset=18)
    samples = Samples(tuple(held_out), (1,) * len(held_out), tuple(map(str, held_out)))
    calibration = Samples(tuple(train_images), (0,) * len(train_images),
                          tuple(map(str, train_images)))
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    with pytest.raises(ParityError) as caught:
        export_proven(model, spec, samples, out, name="near-tie", decoder_options={},
                      gates=DEFAULT_GATES, variant=Variant(quantize="int8",
                                                           max_accuracy_drop=1.0),
                      calibration=calibration)
    message = str(caught.value)
    report = caught.value.report
    assert report.accuracy_fp32 == 1.0 and report.accuracy < 0.9
    assert report.accuracy_drop > 10
    assert "INT8 variant refused, nothing written" in message
    assert "held-out accuracy dropped" in message and "--max-accuracy-drop" in message
    assert "FP32" in message and "INT8" in message and "What to try" in message
    assert list(out.parent.iterdir()) == []

    # The same model exports in FP32: the gate is about INT8, not about the model.
    assert export_proven(model, spec, samples, out, name="near-tie", decoder_options={},
                         gates=DEFAULT_GATES).report.passed


def test_fp16_keeps_input_and_output_types_and_says_what_was_not_validated(
        trained: Trained, tmp_path: Path) -> None:
    out = tmp_path / "fp16.onnx"
    result = export_run(trained.run.path, out, variant=Variant(fp16=True))
    graph = onnx.load(out)
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert {o.name: o.type.tensor_type.elem_type for o in graph.graph.output} == {
        "logits": onnx.TensorProto.FLOAT, "probabilities": onnx.TensorProto.FLOAT}
    halves = [i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
    assert any(i.name.endswith("weight") for i in halves)
    producers = {o: n for n in graph.graph.node for o in n.output}
    # The softmax reads float32 logits and its float32 output is not rounded to float16.
    cast = producers["probabilities"]
    assert cast.op_type == "Cast" and producers[cast.input[0]].op_type == "Softmax"
    softmax = producers[cast.input[0]]
    assert producers[softmax.input[0]].op_type == "Cast"  # float16 logits → float32

    figures = variant_of(out)
    assert figures["kind"] == "fp16" and figures["provider"] == "CPUExecutionProvider"
    assert figures["throughput"] is None  # CPU speed says nothing about a GPU file
    assert "CUDA float16 execution" in figures["not_validated"]
    in_half, converted = figures["float16_ops"]
    assert 0 <= in_half <= converted and converted >= 4  # 4 convolutions and 2 Gemm at least
    assert f"computed {in_half} of the {converted} float16 operators" in figures["not_validated"]
    assert "--device cuda" in figures["not_validated"]
    parity = result.spec.parity
    assert parity.passed and parity.gated
    assert (parity.atol, parity.rtol) == (FP16_TOLERANCE.atol, FP16_TOLERANCE.rtol)
    assert 0 < parity.max_abs_diff <= FP16_TOLERANCE.atol  # float16 moves the logits a little
    shown = CliRunner().invoke(main, ["inspect", str(out)])
    assert "not validated: CUDA float16 execution" in shown.output
    assert Predictor(out).predict([trained.data / trained.run.split.held_out[1][0][0]])


def test_fp16_tolerances_in_the_help_are_the_ones_applied() -> None:
    text = CliRunner().invoke(export_command, ["--help"], terminal_width=200).output
    assert f"|Δlogit| <= {FP16_TOLERANCE.atol:g} + {FP16_TOLERANCE.rtol:g}·|logit|" in text


def test_optimized_graph_passes_the_fp32_gates_and_stays_portable(trained: Trained,
                                                                  tmp_path: Path) -> None:
    out = tmp_path / "opt.onnx"
    result = CliRunner().invoke(main, ["export", str(trained.run.path), "--out", str(out),
                                       "--optimize"])
    assert result.exit_code == 0, result.output
    assert "OPTIMIZED" in result.output and "parity PASSED" in result.output
    graph = onnx.load(out)
    assert {n.domain for n in graph.graph.node} <= {"", "ai.onnx"}
    assert [o.domain for o in graph.opset_import] == [""]
    parity = Predictor(out).spec.parity
    assert parity.gated and parity.atol == DEFAULT_GATES.atol and parity.max_abs_diff <= 1e-4
    assert variant_of(out)["method"] == "ONNX Runtime basic-level optimisation"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("text-int8")
    data = write_chinese(root / "data", per_class=20, seed=3)
    sets = {**TINY_TEXT, "train.epochs": 1, "model.layers": 1}
    return data, train(load_recipe("text-encoder", sets), data, root / "run", device="cpu",
                       progress=False)


def test_text_int8_is_dynamic_quantization(text_run, tmp_path: Path) -> None:
    data, run = text_run
    fp32 = export_run(run.path, tmp_path / "fp32.onnx")
    (tmp_path / "work").mkdir()
    graph, method, kept, n = quantize_int8(onnx.load(fp32.path), learnt_names(run.load_model()),
                                        np.zeros((0, 24), np.int64), tmp_path / "work")
    assert method.startswith("dynamic") and n is None
    kinds = Counter(n.op_type for n in graph.graph.node)
    assert kinds["DynamicQuantizeLinear"] and kinds["MatMulInteger"]
    assert not kinds["QuantizeLinear"]  # no calibrated activation ranges
    # The padding mask (Equal on the token ids) is preprocessing, and stays as it is.
    assert "Equal" in {n.op_type for n in graph.graph.node if n.name in kept}

    out = tmp_path / "int8.onnx"
    result = CliRunner().invoke(main, ["export", str(run.path), "--out", str(out),
                                       "--quantize", "int8", "--max-accuracy-drop", "100"])
    assert "INT8: dynamic" in result.output
    if result.exit_code == 0:
        assert variant_of(out)["calibration_samples"] is None
        assert ops(out)["MatMulInteger"]
        assert Predictor(out).predict(["足球比赛"])
    else:
        assert "not faster than FP32" in result.output and not out.exists()


def test_preprocessing_is_every_node_that_depends_on_no_learnt_parameter(
        trained: Trained) -> None:
    graph = onnx.load(trained.export.path)
    kept = float_nodes(graph, learnt_names(trained.run.load_model()))
    by_name = {n.name: n.op_type for n in graph.graph.node}
    assert [by_name[k] for k in kept] == ["Transpose", "Cast", "Div", "Sub", "Div", "Softmax"]


def test_variant_options_are_checked(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exclusive"):
        Variant(quantize="int8", fp16=True)
    with pytest.raises(ValueError, match="valid: int8"):
        Variant(quantize="int4")
    with pytest.raises(ValueError, match=r"points in \[0, 100\]"):
        Variant(quantize="int8", max_accuracy_drop=-1)
    run = str(trained.run.path)
    out = str(tmp_path / "m.onnx")
    both = CliRunner().invoke(main, ["export", run, "--out", out, "--fp16", "--quantize", "int8"])
    assert both.exit_code == 2 and "exclusive" in both.output
    negative = CliRunner().invoke(main, ["export", run, "--out", out, "--quantize", "int8",
                                         "--max-accuracy-drop", "-1"])
    assert negative.exit_code == 2 and "--max-accuracy-drop" in negative.output
    assert list(tmp_path.iterdir()) == []


def test_variant_metadata_is_json_and_the_parity_report_reads_back(trained: Trained,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "opt.onnx"
    export_run(trained.run.path, out, variant=Variant(optimize=True))
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    provenance = json.loads(meta["toolkit.provenance"])
    assert provenance["variant"]["kind"] == "optimized"
    assert json.loads(meta["toolkit.parity"])["gated"] is True
