"""What a model file says about itself: the `toolkit inspect` report."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from toolkit_deploy.errors import ModelFormatError
from toolkit_deploy.spec import ModelSpec

_SCHEMA = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(int64)": "int64"}


def describe(model: str | os.PathLike) -> dict[str, Any]:
    """One JSON-ready dict: labels, modality, inputs, outputs, preprocess, parity, opset, producer.

    Inputs and outputs are read from the graph itself (dynamic axes by name), the rest from the
    file's metadata, which is validated.
    """
    from toolkit_deploy.session import check_external_data, onnxruntime

    ort = onnxruntime()
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} does not exist.")
    check_external_data(path)
    try:
        session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFormatError(f"ONNX Runtime cannot load {path}: {e}") from e
    meta = session.get_modelmeta()
    spec = ModelSpec.from_metadata(meta.custom_metadata_map, source=str(path))

    def io(args: list) -> list[dict[str, Any]]:
        return [{"name": a.name, "dtype": _SCHEMA.get(a.type, a.type), "shape": a.shape}
                for a in args]

    return {
        "path": str(path),
        "format_version": spec.format_version,
        "modality": spec.modality,
        "labels": list(spec.labels),
        # Multi-label models only: single-label descriptions stay as they were.
        **({"task": spec.task, "thresholds": list(spec.thresholds)} if spec.multilabel else {}),
        "inputs": io(session.get_inputs()),
        "outputs": io(session.get_outputs()),
        # A text model's tokenizer is summarised (the whole vocabulary is in the file).
        "preprocess": (spec.preprocess.summary() if hasattr(spec.preprocess, "summary")
                       else asdict(spec.preprocess)),
        "parity": spec.parity.to_dict() if spec.parity else None,
        "opset": spec.opset,
        # ONNX Runtime exposes the producer's name only; the versions are in the provenance.
        "producer": {"name": meta.producer_name, **spec.provenance.get("versions", {})},
        "provenance": spec.provenance,
        # INT8 / FP16 / optimised files: the variant against the FP32 graph it was made from.
        "variant": spec.provenance.get("variant"),
        "size_bytes": path.stat().st_size,
    }


def for_terminal(value: Any) -> Any:
    """`value` with every string made safe to print on a terminal, recursively (dicts, lists).

    Labels, paths and provenance come from the model file, which anyone may have written: an
    escape sequence in a label (`\x1b]0;…`, `\x1b[2J`) would otherwise retitle or clear the
    terminal, and a bidi override (U+202E) reorder what is shown. Control and format characters
    (Unicode categories Cc, Cf, Zl, Zp: newlines and tabs too) are shown as escapes (`\x1b`,
    `\u202e`); every other character, CJK included, is kept.
    """
    import unicodedata

    if isinstance(value, str):
        return "".join(
            ch.encode("unicode_escape").decode("ascii")
            if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
            for ch in value)
    if isinstance(value, dict):
        return {for_terminal(k): for_terminal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [for_terminal(v) for v in value]
    return value


def variant_lines(variant: Any) -> list[str]:
    """A variant's figures (provenance `variant`) as lines for people; none when absent."""
    if not isinstance(variant, dict):
        return []

    def number(key: str, spec: str) -> str:
        value = variant.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return format(value, spec) if ok else "?"

    kind = str(variant.get("kind", "?")).upper()
    lines = [f"variant    {kind}: {variant.get('method', '?')}",
             f"           held-out accuracy FP32 {number('accuracy_fp32', '.4f')}, {kind} "
             f"{number('accuracy', '.4f')}; top-1 agreement with FP32 "
             f"{number('agreement', '.4f')}; max |Δlogit| {number('max_abs_diff', '.3e')}"]
    if variant.get("speedup") is not None:
        lines.append(f"           ×{number('speedup', '.2f')} FP32's inputs/s at batch "
                     f"{number('batch_size', '.0f')} on {variant.get('provider', '?')}")
    if variant.get("not_validated"):
        lines.append(f"           not validated: {variant['not_validated']}")
    return lines
