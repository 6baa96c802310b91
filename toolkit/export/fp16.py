"""FP16 graphs (onnxruntime.transformers.float16), and what ONNX Runtime's CPU provider really
computes in float16 when it runs one."""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.export.int8 import float_nodes, onnx_copy

if TYPE_CHECKING:
    import onnx


def float16_nodes(path: Path, out: Path) -> tuple[int, int]:
    """(operators ONNX Runtime's CPU provider computes in float16, float16 operators in the
    file), from the graph the session really runs (saved with graph optimisations off, so only
    the casts the CPU provider needs are added)."""
    import onnx

    from toolkit_deploy.session import onnxruntime

    def in_float16(model: onnx.ModelProto) -> int:
        del model.graph.value_info[:]  # inferred again below, from the node types
        model = onnx.shape_inference.infer_shapes(model)
        types = {v.name: v.type.tensor_type.elem_type
                 for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
        types.update({i.name: i.data_type for i in model.graph.initializer})
        half = onnx.TensorProto.FLOAT16
        return sum(1 for n in model.graph.node
                   if n.op_type != "Cast" and any(types.get(i) == half for i in n.input))

    ort = onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return in_float16(onnx.load(out)), in_float16(onnx.load(path))


def to_fp16(graph: onnx.ModelProto, learnt: set[str]) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """The float16 graph, inputs and outputs in their original types; the preprocessing and the
    final softmax stay float32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    keep = float_nodes(graph, learnt)
    converted = convert_float_to_float16(graph, keep_io_types=True,
                                         op_block_list=DEFAULT_OP_BLOCK_LIST,
                                         node_block_list=keep)
    # The converter appends the casts it adds after the nodes that read them, and leaves the
    # float32 types of some intermediate values in value_info (ONNX's checker refuses both).
    _sort_topologically(converted)
    del converted.graph.value_info[:]
    _drop_float16_round_trips(converted)
    return converted, tuple(keep)


def _drop_float16_round_trips(graph: onnx.ModelProto) -> None:
    """Remove `Cast(to float16) → Cast(to float32)` pairs on float32 values: the converter puts
    one between the float32 softmax and the `probabilities` output, which would round the
    probabilities to float16 for nothing."""
    import onnx

    def cast_to(node: Any) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    readers: dict[str, list[Any]] = {}
    for node in graph.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.graph.output}
    dropped = []
    for node in graph.graph.node:
        after = readers.get(node.output[0], [])
        if (cast_to(node) == onnx.TensorProto.FLOAT16 and node.output[0] not in outputs
                and after and all(cast_to(r) == onnx.TensorProto.FLOAT for r in after)):
            for reader in after:
                reader.input[0] = node.input[0]
            dropped.append(node.name)
    keep = [onnx_copy(n) for n in graph.graph.node if n.name not in dropped]
    del graph.graph.node[:]
    graph.graph.node.extend(keep)


def _sort_topologically(graph: onnx.ModelProto) -> None:
    """Reorder the main graph's nodes so that each comes after the producers of its inputs
    (stable: already sorted nodes keep their order)."""
    nodes = list(graph.graph.node)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    waiting = [sum(1 for x in set(n.input) if x in producer) for n in nodes]
    readers: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        for x in set(n.input):
            if x in producer:
                readers.setdefault(producer[x], []).append(i)
    ready = [i for i, w in enumerate(waiting) if w == 0]
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in readers.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        raise ValueError("The float16 graph has a cycle; this is a converter bug.")
    sorted_nodes = [onnx_copy(nodes[i]) for i in order]
    del graph.graph.node[:]
    graph.graph.node.extend(sorted_nodes)
