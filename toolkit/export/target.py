"""Target runtime: lower an exported model's opset and IR version so an older ONNX Runtime loads
it, or refuse early, naming each operator that needs a newer opset.

torch.onnx's dynamo exporter writes opset 18 or newer. Asked for less, torch 2.13 logs a warning,
exports at 18 and tries onnxscript's version converter, which falls back to ONNX's and, when that
fails, logs another warning and keeps opset 18 (`torch/onnx/_internal/exporter/_compat.py`,
`onnxscript/version_converter/__init__.py`): a silent fallback. So the toolkit exports at >= 18
and lowers the result here with ONNX's own converter (`onnx.version_converter`), checks every node
against the target opset's schemas before and after, and runs the full ONNX checker. Numbers are
not checked here: the export's parity gate runs the converted file on held-out samples.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import onnx
import onnx.inliner
import onnx.version_converter

from toolkit_deploy.errors import TargetError

#: ONNX Runtime release (major, minor) → (newest ai.onnx opset it implements, newest IR version
#: it loads), from the table "ONNX opset support" of
#: https://onnxruntime.ai/docs/reference/compatibility.html
#: (source: microsoft/onnxruntime, docs/reference/compatibility.md on the gh-pages branch, read
#: at the revision whose newest row is 1.20). A runtime runs every older opset down to 7.
ORT_LIMITS: dict[tuple[int, int], tuple[int, int]] = {
    (1, 0): (11, 6), (1, 1): (11, 6), (1, 2): (11, 6),
    (1, 3): (12, 7), (1, 4): (12, 7), (1, 5): (12, 7),
    (1, 6): (13, 7), (1, 7): (13, 7),
    (1, 8): (14, 7),
    (1, 9): (15, 8), (1, 10): (15, 8),
    (1, 11): (16, 8),
    (1, 12): (17, 8), (1, 13): (17, 8),
    (1, 14): (18, 8),
    # The table gives IR 8 for 1.15 although opset 19 needs IR 9; `retarget` honours both caps,
    # so for 1.15 it writes opset 18 (the newest opset IR 8 carries).
    (1, 15): (19, 8),
    (1, 16): (19, 9),
    (1, 17): (20, 9),
    (1, 18): (21, 10), (1, 19): (21, 10), (1, 20): (21, 10),
}
# Later releases are not in that table; `limits_for` gives them 1.20's limits.

#: The lowest opset toolkit can convert to: ONNX's version converter (onnx 1.23) has no adapter
#: taking Add, Sub, Mul, Div, Relu or Reshape below version 14 ("No Adapter From Version $14 for
#: Div"), and every built-in model family exports some of them (measured on each).
MIN_TARGET_OPSET = 14

_DEFAULT_DOMAINS = ("", "ai.onnx")
#: Reduce operators whose axes became an input at opset 18, together with `noop_with_empty_axes`.
_REDUCE_18 = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
              "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?")


def limits_for(target_ort: str) -> tuple[int, int]:
    """The newest opset and IR version an ONNX Runtime release supports.

    Releases newer than the table's newest row get that row's limits: the ONNX Runtime
    compatibility page promises that newer releases run every model older ones do, so those
    limits are safe, if conservative.

    Args:
        target_ort: The release, as `MAJOR.MINOR` or `MAJOR.MINOR.PATCH` (e.g. `1.16`).

    Returns:
        `(max opset, max IR version)`.

    Raises:
        ValueError: The version is malformed or older than the oldest runtime toolkit targets.
    """
    match = _VERSION.fullmatch(target_ort.strip()) if isinstance(target_ort, str) else None
    if match is None:
        raise ValueError(f"--target-ort must be an ONNX Runtime version like 1.16 or 1.16.3. "
                         f"Got {target_ort!r}.")
    version = (int(match[1]), int(match[2]))
    newest = max(ORT_LIMITS)
    if version > newest:
        return ORT_LIMITS[newest]
    oldest = _oldest_ort()
    if version < oldest:
        opset = ORT_LIMITS.get(version, (None,))[0]
        runs = f" (it runs at most opset {opset})" if opset is not None else ""
        raise ValueError(
            f"ONNX Runtime {version[0]}.{version[1]}{runs} is older than toolkit can target: the "
            f"oldest is {oldest[0]}.{oldest[1]} (opset {MIN_TARGET_OPSET}), because ONNX's "
            f"version converter cannot lower the element-wise operators every model uses below "
            f"opset {MIN_TARGET_OPSET}. Upgrade the runtime to >= {oldest[0]}.{oldest[1]}."
        )
    return ORT_LIMITS[version]  # every minor release from 1.0 to the newest is in the table


def export_opset(opset: int | None, target_ort: str | None, *, floor: int) -> int:
    """The opset to ask the exporter for before `retarget`: the target opset, but >= `floor`.

    Exporting at the target (rather than at the newest opset and converting down) lets the
    exporter decompose what the target lacks: torch writes `Gelu` only at opset >= 20, and Erf
    arithmetic below, which ONNX's converter cannot do.

    Args:
        opset: The opset asked for, if any.
        target_ort: The ONNX Runtime release to target, if any.
        floor: The exporter's lowest opset (18 for torch's dynamo exporter).
    """
    wanted = [floor if opset is None else opset]
    if target_ort is not None:
        wanted.append(_capped_opset(*limits_for(target_ort)))
    return max(floor, min(wanted))


def retarget(proto: onnx.ModelProto, *, opset: int | None = None,
             target_ort: str | None = None) -> onnx.ModelProto:
    """Convert a model to `opset` (capped by what `target_ort` supports) and lower its IR version.

    The ai.onnx opset becomes `opset`, capped by the target runtime's newest opset; with only
    `target_ort`, the model's opset capped by the runtime's. The IR version becomes the lowest of
    the model's, the runtime's newest and (with `opset`) the one the ONNX release introducing
    that opset wrote, so `--opset 17` alone gives a file ONNX Runtime 1.12 loads. Every node is
    checked against the target opset before converting (so that all the operators that cannot be
    expressed are named at once) and after, then the full ONNX checker runs. `proto` is not
    changed.

    Args:
        proto: The exported model.
        opset: The ai.onnx opset to write.
        target_ort: The oldest ONNX Runtime release the file must load on (e.g. `1.16`).

    Returns:
        The converted, checker-valid model.

    Raises:
        TargetError: An operator needs a newer opset than the target, or the converter cannot
            lower it; the message names each (operator, node, opset it needs) and the fixes.
        ValueError: Bad `opset` or `target_ort`.
    """
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int)
                              or not 1 <= opset <= newest):
        raise ValueError(f"opset must be an int from 1 to {newest} (the newest this onnx "
                         f"{onnx.__version__} knows). Got {opset!r}.")
    current = _default_opset(proto)
    want = current if opset is None else opset
    ir_caps = [proto.ir_version]
    limits = None
    if target_ort is not None:
        limits = limits_for(target_ort)
        want = min(want, _capped_opset(*limits))
        ir_caps.append(limits[1])
    ir_floor = _ir_for_opset(want)
    if opset is not None:
        ir_caps.append(ir_floor)
    ir_version = max(ir_floor, min(ir_caps))
    target = f"opset {want}" + (
        f" (ONNX Runtime {target_ort.strip()} runs at most opset {limits[0]}, IR {limits[1]})"
        if limits else "")

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    if model.functions:
        # The converter and the checks below see only the main graph's nodes.
        model = onnx.inliner.inline_local_functions(model)
    _drop_unused_opsets(model)
    problems = _unsupported(model, want)
    if problems:
        raise TargetError(_explain(target, problems, want))
    if want < 18 <= current:
        _drop_default_noop(model)
    if want != current:
        model = _convert(model, want, target)
    model.ir_version = ir_version
    if ir_version < 10:
        _strip_ir10_metadata(model)
    problems = _unsupported(model, want)
    if problems:  # the converter wrote an operator the target does not have
        raise TargetError(_explain(target, problems, want))
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise TargetError(f"Converting to {target} gave an invalid model: {e}\nRaise the "
                          f"target opset, or export at opset {current}.") from e
    return model


#: The IR version that introduced each tensor element type newer than IR 8's (onnx.proto3's
#: comments on `DataType`); a file using one cannot be written at a lower IR version.
_TYPE_IR = {17: 9, 18: 9, 19: 9, 20: 9, 21: 10, 22: 10, 23: 11, 24: 12,
            25: 13, 26: 13, 27: 13, 28: 13}


def lowest_ir_version(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model at the lowest IR version its opsets and tensor types need.

    The exporter writes the IR version of the onnx it runs with (10 and up), which older
    runtimes refuse before reading a node ("Unsupported model IR version: 10" from ONNX Runtime
    1.16) although opset 18 needs only IR 8. The IR metadata that IR 10 added to graphs and
    nodes (torch's stack traces) goes when the version drops below 10; the model's own
    `metadata_props` stay. `proto` is not changed.

    Raises:
        TargetError: The lowered model fails the full ONNX checker.
    """
    floor = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    for graph in _graphs(proto.graph):
        for value in (*graph.input, *graph.output, *graph.value_info):
            elem = value.type.tensor_type.elem_type
            floor = max(floor, _TYPE_IR.get(elem, proto.ir_version if elem > 28 else 0))
        for tensor in graph.initializer:
            floor = max(floor, _TYPE_IR.get(tensor.data_type,
                                            proto.ir_version if tensor.data_type > 28 else 0))
    if proto.functions:  # function overloads and value_info are IR 10
        floor = max(floor, 10)
    if floor >= proto.ir_version:
        return proto
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    model.ir_version = floor
    if floor < 10:
        _strip_ir10_metadata(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise TargetError(f"Writing this model at IR version {floor} (the lowest its opsets "
                          f"need) gave an invalid model: {e}\nPass --target-ort with a newer "
                          "runtime.") from e
    return model


def _oldest_ort() -> tuple[int, int]:
    return min(v for v, (opset, _) in ORT_LIMITS.items() if opset >= MIN_TARGET_OPSET)


def _capped_opset(max_opset: int, max_ir: int) -> int:
    """The runtime's newest opset that its newest IR version can carry."""
    carried = max(row[2] for row in onnx.helper.VERSION_TABLE if row[1] <= max_ir)
    return min(max_opset, carried)


def _ir_for_opset(opset: int) -> int:
    """The IR version of the ONNX release that introduced `opset` (the lowest that carries it)."""
    return onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])


def _default_opset(proto: onnx.ModelProto) -> int:
    versions = {o.version for o in proto.opset_import if o.domain in _DEFAULT_DOMAINS}
    if len(versions) != 1:
        raise ValueError(f"The model must import exactly one ai.onnx opset. Got "
                         f"{sorted(versions) or 'none'}.")
    return versions.pop()


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph (If/Loop/Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def _nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    for graph in _graphs(model.graph):
        yield from graph.node


def _drop_unused_opsets(model: onnx.ModelProto) -> None:
    used = {n.domain for n in _nodes(model)} | set(_DEFAULT_DOMAINS)
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def _first_opset(op_type: str) -> int | None:
    """The first opset that defines `op_type` (not deprecated), or None if none does."""
    versions = [s.since_version for s in onnx.defs.get_all_schemas_with_history()
                if s.domain == "" and s.name == op_type and not s.deprecated]
    return min(versions) if versions else None


def _unsupported(model: onnx.ModelProto, opset: int) -> list[tuple[str, str, str]]:
    """(operator, node name, why) for each node that cannot be expressed at `opset`."""
    problems = []
    for node in _nodes(model):
        if node.domain not in _DEFAULT_DOMAINS:
            problems.append((node.op_type, node.name,
                             f"is in domain {node.domain!r}, whose support toolkit cannot check"))
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            schema = None
        if schema is None or schema.deprecated:
            first = _first_opset(node.op_type)
            why = (f"needs opset {first}" if first is not None and first > opset
                   else f"does not exist at opset {opset}")
            problems.append((node.op_type, node.name, why))
        elif opset < 18 and node.op_type in _REDUCE_18 and _noop_with_empty_axes(node):
            # With empty axes this node passes its input through; before opset 18 it would
            # reduce every axis instead.
            problems.append((node.op_type, node.name,
                             "needs opset 18 (noop_with_empty_axes=1)"))
    return problems


def _new_attributes(model: onnx.ModelProto, opset: int,
                    message: str) -> list[tuple[str, str, str]]:
    """(operator, node name, why) for each node with an attribute that the converter's
    `message` names and that its operator gained after `opset` (ScatterElements' reduction:
    opset 16; the converter refuses to drop it with a bare assertion)."""
    problems = []
    for node in _nodes(model):
        try:
            known = onnx.defs.get_schema(node.op_type, opset, "").attributes
        except onnx.defs.SchemaError:
            continue
        for attribute in (a.name for a in node.attribute
                          if a.name not in known and re.search(rf"\b{a.name}\b", message)):
            first = _first_opset_with(node.op_type, attribute, opset)
            if first is not None:
                problems.append((node.op_type, node.name,
                                 f"needs opset {first} (attribute {attribute})"))
    return problems


def _first_opset_with(op_type: str, attribute: str, above: int) -> int | None:
    """The first opset above `above` whose schema of `op_type` has `attribute`."""
    for opset in range(above + 1, onnx.defs.onnx_opset_version() + 1):
        try:
            if attribute in onnx.defs.get_schema(op_type, opset, "").attributes:
                return opset
        except onnx.defs.SchemaError:
            return None
    return None


def _noop_with_empty_axes(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "noop_with_empty_axes"), 0)


def _explain(target: str, problems: list[tuple[str, str, str]], opset: int) -> str:
    """One line per operator and reason, naming its nodes, then what the user can do."""
    nodes: dict[tuple[str, str], list[str]] = {}
    for op, name, why in problems:
        nodes.setdefault((op, why), []).append(repr(name))
    lines = []
    for (op, why), names in nodes.items():
        more = f", +{len(names) - 3} more" if len(names) > 3 else ""
        label = "node" if len(names) == 1 else "nodes"
        lines.append(f"  - {op} ({label} {', '.join(names[:3])}{more}) {why}")
    needed = [int(m[1]) for _, why in nodes if (m := re.match(r"needs opset (\d+)", why))]
    fix = "Change the layers that produce these operators"
    if needed:
        fix += f", or raise the target to opset {max(needed)}"
        runtime = _oldest_ort_for(max(needed))
        if runtime is not None:
            fix += f" (--opset {max(needed)}, or --target-ort {runtime[0]}.{runtime[1]} or newer)"
    return (f"Cannot write this model at {target}: {len(nodes)} operator(s) cannot be "
            f"expressed at opset {opset}:\n" + "\n".join(lines) + f"\n{fix}.")


def _oldest_ort_for(opset: int) -> tuple[int, int] | None:
    fits = [v for v, limits in ORT_LIMITS.items() if _capped_opset(*limits) >= opset]
    return min(fits) if fits else None


def _drop_default_noop(model: onnx.ModelProto) -> None:
    """Remove `noop_with_empty_axes` from opset-18 Reduce nodes.

    ONNX's 18 → 17 adapter moves the axes input into an attribute but keeps this attribute,
    which the opset-13 operators do not have (onnx 1.23: "Unrecognized attribute:
    noop_with_empty_axes for operator ReduceMean"). At its default, 0, it changes nothing;
    `_unsupported` has already refused the nodes that set it to 1.
    """
    for node in _nodes(model):
        if node.domain in _DEFAULT_DOMAINS and node.op_type in _REDUCE_18:
            keep = [a for a in node.attribute if a.name != "noop_with_empty_axes"]
            del node.attribute[:]
            node.attribute.extend(keep)


def _convert(model: onnx.ModelProto, opset: int, target: str) -> onnx.ModelProto:
    try:
        return onnx.version_converter.convert_version(model, opset)
    # The C++ adapters fail with RuntimeError (assertions), ValidationError or SchemaError.
    except (RuntimeError, onnx.checker.ValidationError, onnx.defs.SchemaError) as e:
        message = str(e).strip().splitlines()[-1]
        # e.g. "adapter_lookup: Assertion `false` failed: No Adapter From Version $14 for Div"
        stop = re.search(r"From Version \$(\d+)", message)
        why = (f"needs opset {stop[1]} (ONNX's version converter cannot lower it further)" if stop
               else f"cannot be lowered to opset {opset} by ONNX's version converter ({message})")
        problems = [(n.op_type, n.name, why) for n in _nodes(model)
                    if re.search(rf"\b{re.escape(n.op_type)}\b", message)]
        problems = problems or _new_attributes(model, opset, message)
        if not problems:
            raise TargetError(f"Cannot write this model at {target}: ONNX's version converter "
                              f"failed: {message}\nRaise the target opset.") from e
        raise TargetError(_explain(target, problems, opset)) from e


def _strip_ir10_metadata(model: onnx.ModelProto) -> None:
    """Drop the `metadata_props` that IR 10 added to graphs, nodes, values and tensors (torch
    stores stack traces there); the model's own `metadata_props` are IR 1 and stay."""
    for graph in _graphs(model.graph):
        del graph.metadata_props[:]
        for items in (graph.node, graph.input, graph.output, graph.value_info, graph.initializer):
            for item in items:
                del item.metadata_props[:]
