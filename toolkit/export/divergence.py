"""When parity fails, say where: the first intermediate values where ONNX Runtime stops computing
what PyTorch computes.

The dynamo exporter names every ONNX value after the FX node of the exported program that it
implements, which is how torch.onnx's own checker (`torch.onnx.verification.verify_onnx_program(
..., compare_intermediates=True)`) pairs them. That checker runs one ONNX Runtime session per FX
node, each followed by a full `gc.collect()` (~0.5 s a node here, minutes for a transformer), so
this module uses the same pairing with one session: `ONNXProgram.compute_values` for every paired
value at once, and a `torch.fx.Interpreter` over the exported program for PyTorch's side.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.export.graph import MIN_OPSET, export_program

#: Torch's own frames (nn.Linear.forward, …) say nothing about the user's model; the source shown
#: is the last frame outside torch.
_TORCH_DIR = str(Path(torch.__file__).parent)
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
#: Rows of the batch a forward pass holds at once when choosing the samples to compare.
_CHUNK = 64


@dataclass(frozen=True)
class Divergence:
    """One intermediate value of the ONNX graph that differs from PyTorch's beyond tolerance.

    Attributes:
        value: The ONNX value's name (the FX node's, or the graph output's).
        op_type: The ONNX operator that produced it.
        node: The ONNX node that produced it.
        torch_op: The PyTorch operator it implements, with the module it was called in and the
            line of the model's source that called it, when the exported program records them.
        max_abs: Largest |ONNX − PyTorch| over its elements (inf for a NaN/inf or shape mismatch).
        max_rel: Largest |ONNX − PyTorch| / max(|PyTorch|, 1e-3), as in the parity report.
        count: How many of its elements differ beyond tolerance.
        size: How many elements it has.
        starts_here: No compared input of its PyTorch operator diverges: the difference is
            introduced by this operator's translation, not inherited from an earlier one.
    """

    value: str
    op_type: str
    node: str
    torch_op: str | None
    max_abs: float
    max_rel: float
    count: int
    size: int
    starts_here: bool


def find_divergences(
    model: torch.nn.Module,
    example: np.ndarray | torch.Tensor,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    limit: int = 5,
    opset: int = MIN_OPSET,
    max_samples: int = 8,
    **export_options: Any,
) -> list[Divergence]:
    """Export `model` as the toolkit does and compare every intermediate value of the ONNX graph
    with PyTorch's on `example`.

    Args:
        model: The PyTorch model (logits out); exported inside `WithProbabilities`, in eval mode.
        example: A decoded batch, e.g. the held-out samples whose parity failed.
        atol: A value diverges where |ONNX − PyTorch| > atol + rtol·|PyTorch| (numpy.allclose,
            the parity gate's rule); integer and boolean values must be equal.
        rtol: See `atol`.
        limit: Most divergences returned.
        opset: ONNX opset (>= 18).
        max_samples: Samples compared value by value: those of `example` whose outputs differ the
            most (every intermediate of every sample is held in memory at once).
        **export_options: Passed on to `torch.onnx.export`, e.g. `custom_translation_table`.

    Returns:
        The first `limit` diverging values in graph (topological) order, the first being where
        the difference starts; empty when every value agrees.
    """
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} for the dynamo exporter. Got {opset}.")
    _check_options(atol, rtol, limit, max_samples)  # before the export, which takes seconds
    batch = _as_batch(example)
    program = export_program(model, batch[: min(2, len(batch))], opset, **export_options)
    return program_divergences(program, batch, atol=atol, rtol=rtol, limit=limit,
                               max_samples=max_samples)


def program_divergences(
    program: torch.onnx.ONNXProgram,
    example: np.ndarray | torch.Tensor,
    *,
    atol: float = 1e-4,
    rtol: float = 1e-3,
    limit: int = 5,
    max_samples: int = 8,
) -> list[Divergence]:
    """`find_divergences` for a program already exported by the dynamo exporter (one input).

    Args:
        program: The `torch.onnx.export(..., dynamo=True)` result, before it is saved (it must
            still hold its `exported_program`).
        example: See `find_divergences`.
        atol: See `find_divergences`.
        rtol: See `find_divergences`.
        limit: See `find_divergences`.
        max_samples: See `find_divergences`.
    """
    _check_options(atol, rtol, limit, max_samples)
    if program.exported_program is None:
        raise ValueError("The ONNX program has no exported_program to compare with; pass the "
                         "result of torch.onnx.export(..., dynamo=True) before it is saved.")
    batch = _as_batch(example)
    module = program.exported_program.module()
    batch = _worst_samples(program, module, batch, atol, rtol, max_samples)

    interpreter = _Recorder(module)
    with torch.no_grad():
        interpreter.run(batch)
    fx_to_onnx = _paired_values(program, module.graph)
    if not fx_to_onnx:
        return []  # no operator of the graph is an ONNX node (an identity model)
    onnx_values = dict(zip(fx_to_onnx.values(),
                           program.compute_values(list(fx_to_onnx.values()), (batch,)),
                           strict=True))
    producers = {v.name: node for node in program.model.graph for v in node.outputs if v.name}

    found: list[Divergence] = []
    # Values that differ, or that read one that differs without being compared themselves (a
    # tuple of batch norm's outputs, a value the optimizer folded away): what a divergence
    # inherits from.
    tainted: set[str] = set()
    for fx_node in module.graph.nodes:
        upstream = any(a.name in tainted for a in fx_node.all_input_nodes)
        stats = None
        if fx_node.name in fx_to_onnx and fx_node.name in interpreter.values:
            name = fx_to_onnx[fx_node.name]
            stats = _compare(interpreter.values[fx_node.name], onnx_values[name], atol, rtol)
        if stats is None:
            if upstream:
                tainted.add(fx_node.name)
            continue
        max_abs, max_rel, count, size = stats
        if not count:
            continue
        tainted.add(fx_node.name)
        if len(found) < limit:
            producer = producers[name]
            found.append(Divergence(
                value=name, op_type=producer.op_type, node=producer.name or "",
                torch_op=_torch_op(fx_node), max_abs=max_abs, max_rel=max_rel, count=count,
                size=size, starts_here=not upstream,
            ))
    return found


def describe(divergences: list[Divergence]) -> str:
    """Say, for a person, where the ONNX graph stops agreeing with PyTorch and what to do."""
    if not divergences:
        return ("Every intermediate value of the ONNX graph agrees with PyTorch within tolerance "
                "on the samples compared, so no single operator is to blame: the difference comes "
                "from ONNX Runtime's fused kernels, from samples not compared, or from small "
                "differences that grow along the graph (raise --atol/--rtol only if that is "
                "acceptable).")
    lines = ["ONNX Runtime first differs from PyTorch at these values (in graph order; "
             "|Δ| > atol + rtol·|PyTorch|):"]
    for i, d in enumerate(divergences, 1):
        source = f" ← {d.torch_op}" if d.torch_op else ""
        where = ("starts here: its inputs agree" if d.starts_here
                 else "inherited from an earlier value")
        lines.append(
            f"  {i}. value `{d.value}` of node `{d.node}` ({d.op_type}){source}: "
            f"max |Δ| {d.max_abs:.3g}, max rel {d.max_rel:.3g}, {d.count} of {d.size} elements "
            f"differ ({where})."
        )
    first = next((d for d in divergences if d.starts_here), divergences[0])
    culprit = (f"PyTorch's `{first.torch_op.split(' ', 1)[0]}`" if first.torch_op
               else f"ONNX node `{first.node}`")
    lines.append(
        f"Fix: {culprit} (value `{first.value}`) is where the exported graph stops computing "
        f"what PyTorch computes: correct its ONNX translation (a custom_translation_table entry, "
        f"or torch.onnx's own for this opset), or write that part of the model with operators "
        f"that export faithfully."
    )
    return "\n".join(lines)


def _check_options(atol: float, rtol: float, limit: int, max_samples: int) -> None:
    if not (atol >= 0 and rtol >= 0):
        raise ValueError(f"atol and rtol must be >= 0. Got atol={atol}, rtol={rtol}.")
    if limit < 1 or max_samples < 1:
        raise ValueError(f"limit and max_samples must be >= 1. Got limit={limit}, "
                         f"max_samples={max_samples}.")


def _as_batch(example: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(example, np.ndarray):
        example = torch.from_numpy(np.ascontiguousarray(example))
    if not isinstance(example, torch.Tensor):
        raise TypeError(f"example must be a numpy array or a torch tensor. Got "
                        f"{type(example).__name__}.")
    if example.ndim == 0 or len(example) == 0:
        raise ValueError(f"example must be a batch of at least one sample. Got shape "
                         f"{tuple(example.shape)}.")
    return example


def _worst_samples(program: torch.onnx.ONNXProgram, module: torch.nn.Module,
                   batch: torch.Tensor, atol: float, rtol: float, limit: int) -> torch.Tensor:
    """The `limit` samples whose outputs differ the most (in their order in `batch`), measured
    as the largest |Δ| / (atol + rtol·|PyTorch|) over every output."""
    if len(batch) <= limit:
        return batch
    scores = []
    try:
        with torch.no_grad():
            for i in range(0, len(batch), _CHUNK):
                part = batch[i : i + _CHUNK]
                expected = _leaves(module(part))
                actual = program(part)
                score = torch.zeros(len(part), dtype=torch.float64)
                for e, a in zip(expected, actual, strict=True):
                    e, a = e.double().flatten(1), a.double().flatten(1)
                    ratio = ((a - e).abs() / (atol + rtol * e.abs())).nan_to_num(math.inf)
                    score = torch.maximum(score, ratio.max(1).values)
                scores.append(score)
    finally:
        program.release()
    picks = torch.cat(scores).argsort(descending=True, stable=True)[:limit]
    return batch[picks.sort().values]


class _Recorder(torch.fx.Interpreter):
    """Runs the exported program's graph module and keeps every operator's result by node name,
    as torch.onnx's `_VerificationInterpreter` sees them."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.values: dict[str, Any] = {}

    def run_node(self, n: torch.fx.Node) -> Any:
        result = super().run_node(n)
        if n.op == "call_function":
            self.values[n.name] = result
        return result


def _paired_values(program: torch.onnx.ONNXProgram, graph: torch.fx.Graph) -> dict[str, str]:
    """FX node name → name of the ONNX value computing it, for every tensor an ONNX node
    produces. The exporter names values after their FX node, except graph outputs, which take
    the contract's names (paired by position)."""
    import onnx_ir as ir  # onnxscript's IR, which ONNXProgram.model is

    # Sequences (of a split) cannot come back from ONNX Runtime as tensors; their items do.
    produced = {v.name for node in program.model.graph for v in node.outputs
                if v.name and isinstance(v.type, ir.TensorType)}
    pairs = {}
    for node in graph.nodes:
        if node.op == "call_function" and node.name in produced:
            pairs[node.name] = node.name
    output = next(n for n in graph.nodes if n.op == "output")
    fx_outputs = _leaves(output.args[0])
    for fx_out, onnx_out in zip(fx_outputs, program.model.graph.outputs, strict=False):
        if isinstance(fx_out, torch.fx.Node) and onnx_out.name in produced:
            pairs[fx_out.name] = onnx_out.name
    return pairs


def _leaves(tree: Any) -> list[Any]:
    """The items of nested tuples, lists and dicts, in order (outputs of a graph module)."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return [leaf for item in tree.values() for leaf in _leaves(item)]
    return [tree]


def _compare(expected: Any, actual: torch.Tensor, atol: float,
             rtol: float) -> tuple[float, float, int, int] | None:
    """(max |Δ|, max rel, elements beyond tolerance, elements), or None when the two cannot be
    compared element by element."""
    if not isinstance(expected, torch.Tensor):
        if not isinstance(expected, (bool, int, float)):
            return None  # a tuple of a multi-output operator: its parts are compared
        expected = torch.tensor(expected)
    expected, actual = expected.detach().cpu(), actual.detach().cpu()
    if expected.is_complex() or actual.is_complex():
        return None  # the exporter stores complex values as real pairs; not comparable 1:1
    size = expected.numel()
    if expected.shape != actual.shape:
        if expected.numel() != actual.numel() or expected.numel() != 1:
            return math.inf, math.inf, max(size, actual.numel()), max(size, actual.numel())
        actual = actual.reshape(expected.shape)  # a scalar the exporter holds as a 1-tensor
    if size == 0:
        return 0.0, 0.0, 0, 0
    e, a = expected.double(), actual.double()
    exact = not (expected.is_floating_point() or actual.is_floating_point())
    if exact:
        bad = e != a
    else:
        bad = ~torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    count = int(bad.sum())
    if not count:
        return 0.0, 0.0, 0, size
    diff = (a - e).abs()
    diff = torch.where(bad & ~diff.isfinite(), math.inf, diff.nan_to_num(0.0))
    rel = diff / e.abs().clamp(min=1e-3).nan_to_num(math.inf)
    return float(diff.max()), float(rel.max()), count, size


def _torch_op(node: torch.fx.Node) -> str | None:
    """'aten.gelu in model.head.1 (GELU) at toolkit/models/layers.py:42', from what torch.export
    recorded about the node."""
    if node.target is operator.getitem and node.all_input_nodes:
        node = node.all_input_nodes[0]  # one output of a multi-output operator (batch norm…)
    target = node.target
    if target is None:
        return None
    if hasattr(target, "overloadpacket"):  # an OpOverload: 'aten.gelu', not 'aten.gelu.default'
        op = str(target.overloadpacket)
    else:
        op = getattr(target, "__name__", None) or str(target)
    stack = node.meta.get("nn_module_stack") or {}
    path, cls = list(stack.values())[-1] if stack else ("", "")
    text = op + (f" in {path} ({str(cls).rsplit('.', 1)[-1]})" if path else "")
    frames = [(f, line) for f, line in _FRAME.findall(node.meta.get("stack_trace") or "")
              if not f.startswith(_TORCH_DIR)]
    if frames:
        file, line = frames[-1]
        path = Path(file)
        if path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
        text += f" at {path.as_posix()}:{line}"
    return text
