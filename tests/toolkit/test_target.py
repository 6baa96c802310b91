"""Target runtime: models are lowered to an older opset / IR version with the same outputs, or
refused early, naming the operator that needs a newer opset."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from toolkit.export.graph import export_program
from toolkit.export.target import (
    ORT_LIMITS,
    TargetError,
    export_opset,
    limits_for,
    retarget,
)
from toolkit.models import create_model
from toolkit.recipe import load_recipe
from toolkit_deploy.spec import TextPreprocess

#: Pooling "avgmax" puts both ReduceMean and ReduceMax in the graph, next to Conv, MaxPool, Gemm.
CNN = {"data.image_size": 32, "data.channels": 3, "model.channels": [8, 16], "model.hidden": [16],
       "model.pool": "avgmax"}


def opset_of(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def run(proto: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


@pytest.fixture(scope="module")
def cnn() -> tuple[onnx.ModelProto, np.ndarray]:
    """The image CNN as the toolkit exports it (opset 18), and a batch of random pixels."""
    torch.manual_seed(0)
    model = create_model(load_recipe("image-cnn", CNN), 3).eval()
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    proto = export_program(model, x[:2], 18).model_proto
    helper.set_model_props(proto, {"toolkit.spec": "kept"})
    return proto, x


def export(forward, example: torch.Tensor, opset: int) -> onnx.ModelProto:
    class Layer(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return forward(x)

    return export_program(Layer(), example.numpy(), opset).model_proto


@pytest.mark.parametrize(("version", "limits"), [
    ("1.8", (14, 7)), ("1.13", (17, 8)), ("1.14", (18, 8)), ("1.16", (19, 9)),
    ("1.16.3", (19, 9)), ("1.17", (20, 9)), ("1.20", (21, 10)),
])
def test_limits_follow_the_onnxruntime_table(version: str, limits: tuple[int, int]) -> None:
    assert limits_for(version) == limits


@pytest.mark.parametrize("version", ["1.32", "1.21.1", "2.0"])
def test_newer_runtimes_get_the_newest_documented_limits(version: str) -> None:
    assert limits_for(version) == ORT_LIMITS[max(ORT_LIMITS)] == (21, 10)


@pytest.mark.parametrize(("version", "runs"), [("1.7", r" \(it runs at most opset 13\)"),
                                             ("0.5", "")])
def test_too_old_runtime_says_the_oldest_and_why(version: str, runs: str) -> None:
    with pytest.raises(ValueError, match=rf"{re.escape(version)}{runs} is older than toolkit can "
                                         r"target: the oldest is 1\.8 \(opset 14\), because "
                                         r"ONNX's version converter"):
        limits_for(version)


@pytest.mark.parametrize("version", ["abc", "1", "1.16.x", "", " v1.16"])
def test_malformed_runtime_version_is_refused(version: str) -> None:
    with pytest.raises(ValueError, match="like 1.16 or 1.16.3"):
        limits_for(version)


@pytest.mark.parametrize(("opset", "target_ort", "want_opset", "want_ir"), [
    (17, None, 17, 8),     # --opset alone also lowers the IR version to the opset's
    (None, "1.13", 17, 8),
    (None, "1.15", 18, 8),  # the table's IR 8 cannot carry opset 19
    (None, "1.16", 18, 9),  # the model's opset is kept, the IR version lowered
    (19, "1.16", 19, 9),   # up-conversion
    (20, "1.16", 19, 9),   # capped by the runtime
    (14, None, 14, 7),     # the lowest opset toolkit converts to
    (None, "1.20", 18, 10),  # nothing to do
])
def test_cnn_is_retargeted_and_computes_the_same(
    cnn: tuple[onnx.ModelProto, np.ndarray], opset: int | None, target_ort: str | None,
    want_opset: int, want_ir: int,
) -> None:
    proto, x = cnn
    before = proto.SerializeToString()
    out = retarget(proto, opset=opset, target_ort=target_ort)

    assert proto.SerializeToString() == before  # the input is left alone
    assert (opset_of(out), out.ir_version) == (want_opset, want_ir)
    onnx.checker.check_model(out, full_check=True)
    assert [i.name for i in out.graph.input] == [i.name for i in proto.graph.input]
    assert [o.name for o in out.graph.output] == ["logits", "probabilities"]
    assert {p.key: p.value for p in out.metadata_props} == {"toolkit.spec": "kept"}
    if want_ir < 10:  # IR 10's per-node metadata (torch's stack traces) cannot stay
        assert not any(n.metadata_props for n in out.graph.node)
    # Random pixels only show the conversion kept the arithmetic; the export's parity gate
    # proves the file on held-out samples.
    for got, expected in zip(run(out, x), run(proto, x), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_cnn_below_opset_14_names_the_operator_the_converter_cannot_lower(
    cnn: tuple[onnx.ModelProto, np.ndarray],
) -> None:
    with pytest.raises(TargetError, match=r"(?s)at opset 13.*- Div \(nodes? '.*needs opset 14 "
                                          r"\(ONNX's version converter.*--opset 14"):
        retarget(cnn[0], opset=13)


def test_col2im_is_refused_below_opset_18_before_converting() -> None:
    # F.fold exports to Col2Im, which opset 18 introduced.
    proto = export(lambda x: F.fold(x, output_size=(4, 4), kernel_size=2, stride=2),
                   torch.randn(2, 16, 4), 18)
    with pytest.raises(TargetError) as caught:
        retarget(proto, target_ort="1.13")
    message = str(caught.value)
    assert "ONNX Runtime 1.13 runs at most opset 17, IR 8" in message
    assert "- Col2Im (node 'node_col2im') needs opset 18" in message
    assert "Change the layers" in message and "raise the target to opset 18" in message
    assert "--target-ort 1.14 or newer" in message


def test_an_attribute_newer_than_the_target_names_its_operator_and_opset() -> None:
    # text-bag counts its n-grams with a scatter-add: ScatterElements has `reduction` since 16,
    # and ONNX's converter refuses to drop it with a bare assertion.
    ids = torch.tensor([[1, 2, 1, 0]])
    proto = export(lambda i: torch.zeros(i.shape[0], 4).scatter_add(1, i, torch.ones(i.shape)),
                   ids, 18)
    with pytest.raises(TargetError, match=r"(?s)at opset 15.*- ScatterElements \(node '\w+'\) "
                                          r"needs opset 16 \(attribute reduction\).*--opset 16"):
        retarget(proto, opset=15)
    out = retarget(proto, opset=16)
    np.testing.assert_array_equal(run(out, ids.numpy())[0], run(proto, ids.numpy())[0])


def test_gelu_of_opset_20_is_refused_for_onnxruntime_1_16_but_exports_at_its_opset() -> None:
    x = torch.randn(2, 4)
    proto = export(F.gelu, x, 20)
    with pytest.raises(TargetError, match=r"(?s)- Gelu \(node '\w+'\) needs opset 20.*--target-ort "
                                          r"1\.17 or newer"):
        retarget(proto, target_ort="1.16")
    # Exported at the opset the runtime has, the exporter writes Gelu's arithmetic instead.
    opset = export_opset(None, "1.16", floor=18)
    lowered = retarget(export(F.gelu, x, opset), target_ort="1.16")
    assert "Gelu" not in {n.op_type for n in lowered.graph.node}
    np.testing.assert_allclose(run(lowered, x.numpy())[0], run(proto, x.numpy())[0], atol=1e-6)


def test_text_encoder_needs_opset_17_for_layer_normalization() -> None:
    preprocess = TextPreprocess(tokenizer="{}", max_length=16, pad_id=0, vocab_size=64)
    torch.manual_seed(0)
    model = create_model(load_recipe("text-encoder", {"model.layers": 1}), 3, preprocess).eval()
    ids = np.random.default_rng(0).integers(1, 64, (2, 16)).astype(np.int64)
    proto = export_program(model, ids, 18).model_proto
    with pytest.raises(TargetError, match=r"- LayerNormalization \(nodes? .*needs opset 17"):
        retarget(proto, opset=16)
    lowered = retarget(proto, target_ort="1.12")
    assert (opset_of(lowered), lowered.ir_version) == (17, 8)
    np.testing.assert_allclose(run(lowered, ids)[0], run(proto, ids)[0], rtol=1e-5, atol=1e-6)


def tiny_model(node: onnx.NodeProto, domain: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def test_reduce_with_noop_on_empty_axes_cannot_go_below_18() -> None:
    proto = tiny_model(helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean",
                                        noop_with_empty_axes=1))
    with pytest.raises(TargetError, match=r"- ReduceMean \(node 'mean'\) needs opset 18 "
                                          r"\(noop_with_empty_axes=1\)"):
        retarget(proto, opset=17)
    plain = tiny_model(helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean",
                                        noop_with_empty_axes=0))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(run(retarget(plain, opset=17), x)[0], run(plain, x)[0])


def test_operators_of_other_domains_are_refused() -> None:
    proto = tiny_model(helper.make_node("Fancy", ["x"], ["y"], name="fancy",
                                        domain="com.example"), "com.example")
    with pytest.raises(TargetError, match=r"Fancy \(node 'fancy'\) is in domain 'com.example'"):
        retarget(proto, target_ort="1.16")


@pytest.mark.parametrize("opset", [0, -3, "17", 17.0, True, 99])
def test_bad_opset_is_refused(cnn: tuple[onnx.ModelProto, np.ndarray], opset: object) -> None:
    with pytest.raises(ValueError, match="opset must be an int from 1 to"):
        retarget(cnn[0], opset=opset)  # type: ignore[arg-type]


@pytest.mark.parametrize(("opset", "target_ort", "expected"), [
    (None, None, 18), (None, "1.13", 18), (None, "1.15", 18), (None, "1.17", 18),
    (20, "1.16", 19), (20, None, 20), (21, "1.17", 20), (17, None, 18),
])
def test_export_opset_is_the_target_but_never_below_the_exporters_floor(
    opset: int | None, target_ort: str | None, expected: int,
) -> None:
    assert export_opset(opset, target_ort, floor=18) == expected
