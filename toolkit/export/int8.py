"""INT8 graphs with ONNX Runtime's quantization, and what must stay float in any variant.

A graph with learnt convolutions (image, audio, video) gets static QDQ quantization calibrated on
training inputs: int8 weights per output channel, uint8 activations. Others (embeddings and linear
layers: the text models) get dynamic quantization. Float stays: the preprocessing (every node that
depends on no learnt parameter: uint8 → float scaling, log-mel features, padding masks), the layer
giving the logits (so `logits` and `probabilities` are not rounded to 8 bits) and, when it reads
fewer than `INT8_STEM_CHANNELS` channels, the first convolution stage (benchmarks/README.md,
`quantize.py`, has the measurements behind each choice).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit_deploy import names

if TYPE_CHECKING:
    import onnx
    import torch

#: A first convolution reading fewer input channels than this stays float in INT8: its int8
#: kernel is slower than float's (3→16 channels at 64×64: 9.8 ms int8 vs 4.8 ms float per batch of
#: 64; 16→32: 15.3 vs 27.7), and it sees the normalised input. Measured on the recipes' models:
#: image (3 channels) ×1.7 with a float stem vs ×0.95 without; video (45: frames and their
#: differences) ×1.2 with vs ×2.9 without, at batch 32.
INT8_STEM_CHANNELS = 8

#: Elementwise activations that never decrease (LeakyRelu: with alpha >= 0). Max pooling commutes
#: with them, so `act → MaxPool` may run as `MaxPool → act` with the same result.
_MONOTONE = ("Relu", "Sigmoid", "Tanh", "LeakyRelu")
#: What may follow a convolution within its stage (elementwise activations, pooling, norm).
_STAGE_OPS = (*_MONOTONE, "MaxPool", "AveragePool", "Elu", "Selu", "HardSigmoid", "HardSwish",
              "Clip", "BatchNormalization")


def learnt_names(model: torch.nn.Module) -> set[str]:
    """Initializer names the exporter gives the model's learnt parameters."""
    from toolkit.export.graph import WithProbabilities

    return {name for name, _ in WithProbabilities(model).named_parameters()}


def ort_optimized(path: Path, out: Path) -> onnx.ModelProto:
    """ONNX Runtime's basic-level optimisation of the model at `path`, saved at `out`.

    Basic keeps to standard ONNX operators, so the file stays portable; the extended level adds
    ORT-only fused operators and the layout level CPU-specific blocked layouts.
    """
    import onnx

    from toolkit_deploy.session import onnxruntime

    ort = onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return onnx.load(out)


def prepared_for_quantization(graph: onnx.ModelProto, work: Path) -> onnx.ModelProto:
    """ONNX Runtime's quantization pre-processing (`quant_pre_process`: optimisation, then shape
    inference), done step by step because `quant_pre_process` logs a failed optimisation and goes
    on; symbolic shape inference is left out (it fails on some of our graphs' Concat, and every
    dimension but the batch is static)."""
    import onnx
    from onnxruntime.quantization.quant_utils import add_pre_process_metadata

    source = work / "fp32-for-int8.onnx"
    onnx.save_model(graph, source)
    prepared = onnx.shape_inference.infer_shapes(ort_optimized(source, work / "prepared.onnx"),
                                                 strict_mode=True)
    add_pre_process_metadata(prepared)  # what quant_pre_process marks (quantize_* check it)
    return prepared


def float_nodes(graph: onnx.ModelProto, learnt: set[str]) -> list[str]:
    """Names of the nodes that must stay float in any variant: the preprocessing (every node
    that depends on no learnt parameter) and the final softmax (the `probabilities` output)."""
    dependent = set(learnt)
    keep = []
    for node in graph.graph.node:  # topologically sorted, as ONNX requires
        if dependent.intersection(node.input):
            dependent.update(node.output)
        else:
            keep.append(node.name)
    keep += [n.name for n in graph.graph.node if names.PROBABILITIES in n.output]
    return keep


def _first_stage(graph: onnx.ModelProto, learnt: set[str], preprocessing: list[str]) -> list[Any]:
    """The first learnt convolution and the activation / pooling / normalisation nodes after
    it, up to the next convolution (empty when the graph has no learnt convolution)."""
    skip = set(preprocessing)
    nodes = list(graph.graph.node)
    conv = next((n for n in nodes if n.op_type == "Conv" and n.name not in skip
                 and learnt.intersection(n.input)), None)
    if conv is None:
        return []
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    stage = [conv]
    while len(after := consumers.get(stage[-1].output[0], [])) == 1 \
            and after[0].op_type in _STAGE_OPS and len(after[0].output) == 1:
        stage.append(after[0])
    return stage


def _pool_before_activation(graph: onnx.ModelProto, stage: list[Any]) -> None:
    """Swap `act → MaxPool` into `MaxPool → act` within the first stage when `act` is monotone
    (exact: both pick the same element). The float stage then ends in its activation rather than
    in a MaxPool, which ONNX Runtime's QDQ propagation would otherwise turn into a uint8 NCHW
    MaxPool (measured on the image recipe, batch 64, one thread: 19.6 ms, against 1.7 ms as a float
    NCHWc MaxPool).
    """
    for act, pool in zip(stage, stage[1:], strict=False):
        monotone = act.op_type in _MONOTONE and all(
            a.f >= 0 for a in act.attribute if a.name == "alpha")
        if monotone and pool.op_type == "MaxPool":
            inner, outer = act.input[0], pool.output[0]
            pool.input[0], pool.output[0] = inner, f"{pool.output[0]}_before_{act.name}"
            act.input[0], act.output[0] = pool.output[0], outer
            # The pool now runs first: swap the two in the (topologically sorted) node list.
            nodes = graph.graph.node
            i = next(k for k, n in enumerate(nodes) if n.name == act.name)
            j = next(k for k, n in enumerate(nodes) if n.name == pool.name)
            first, second = onnx_copy(nodes[j]), onnx_copy(nodes[i])
            nodes[i].CopyFrom(first)
            nodes[j].CopyFrom(second)
            return


def onnx_copy(node: Any) -> Any:
    """A detached copy of a protobuf message."""
    copy = type(node)()
    copy.CopyFrom(node)
    return copy


def quantize_int8(graph: onnx.ModelProto, learnt: set[str], calibration: np.ndarray,
                  work: Path) -> tuple[onnx.ModelProto, str, tuple[str, ...], int | None]:
    """The INT8 graph: static QDQ calibrated on `calibration` when the graph has learnt
    convolutions, dynamic otherwise.

    Args:
        graph: The FP32 graph.
        learnt: Names of the initializers that are learnt parameters.
        calibration: Decoded training inputs (static quantization's activation ranges).
        work: A folder for the intermediate files.

    Returns:
        The quantized graph, how it was quantized (in words), the nodes kept float and the
        number of calibration inputs used (None for dynamic quantization).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    prepared = prepared_for_quantization(graph, work)
    keep = float_nodes(prepared, learnt)
    logits = [n.name for n in prepared.graph.node if names.LOGITS in n.output]
    stage = _first_stage(prepared, learnt, keep)
    out = work / "int8.onnx"
    if stage:
        inits = {i.name: i for i in prepared.graph.initializer}
        stem = inits[stage[0].input[1]].dims[1] < INT8_STEM_CHANNELS  # Conv weight O×I×kH×kW
        if stem:
            _pool_before_activation(prepared, stage)
            keep += [n.name for n in stage]
        keep += logits
        source = work / "prepared-swapped.onnx"
        onnx.save_model(prepared, source)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.batches = iter(calibration[i : i + 16]
                                    for i in range(0, len(calibration), 16))

            def get_next(self) -> dict[str, np.ndarray] | None:
                batch = next(self.batches, None)
                return None if batch is None else {names.INPUT: batch}

        quantize_static(source, out, Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul", "MaxPool", "Relu",
                                              "Clip"],
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        method = (f"static QDQ (per-channel int8 weights, uint8 activations, MinMax calibration "
                  f"on {len(calibration)} training inputs); float: preprocessing, "
                  f"{'first convolution stage, ' if stem else ''}logits")
    else:
        keep += logits
        source = work / "prepared.onnx"
        onnx.save_model(prepared, source)
        quantize_dynamic(source, out, op_types_to_quantize=["MatMul", "Gemm", "Gather"],
                         weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        method = ("dynamic (int8 weights of MatMul/Gemm and embeddings, activations quantized "
                  "per batch at run time); float: preprocessing, logits")
    return onnx.load(out), method, tuple(keep), len(calibration) if stage else None
