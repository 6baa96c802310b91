"""The few parts of an ONNX file's protobuf the runtime reads or writes itself, without `onnx`.

The runtime depends on ONNX Runtime only, yet must look inside a model file before ONNX Runtime
opens it: to find the external data files its tensors point at (which must stay inside the
model's folder). This module walks the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/) over the messages that can hold a tensor,
skipping everything else by its length, so a multi-GB file costs a few reads of headers. It also
writes the tiny Identity model `toolkit doctor` creates sessions on.

Field numbers are those of onnx/onnx.proto (ModelProto.graph = 7, TensorProto.external_data = 13,
...); they are frozen by protobuf's compatibility rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolkit_deploy.errors import ModelFormatError

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
#: Sub-graphs (If, Loop, Scan) nest; protobuf's own parsers stop at 100 levels.
MAX_DEPTH = 100

# Message → {field number: message type of that field} for the fields that lead to tensors.
_TENSOR_PATHS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse",
                  23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_EXTERNAL_DATA = 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ModelFormatError(f"not a valid ONNX protobuf: a bad varint at byte {pos}.")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value) of the message in `buf[start:end]`; the value of a
    length-delimited field is its (start, end) span, of the others their integer.

    Raises:
        ModelFormatError: The bytes are not protobuf (a truncated field, an unknown wire type).
    """
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ModelFormatError(f"not a valid ONNX protobuf: field number 0 at byte {pos}.")
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise ModelFormatError(f"not a valid ONNX protobuf: truncated at byte {pos}.")
            value = int.from_bytes(buf[pos : pos + size], "little")
            pos += size
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise ModelFormatError(
                    f"not a valid ONNX protobuf: a field of {size} bytes at byte {pos} runs past "
                    f"the end ({end} bytes); the file is truncated or not ONNX."
                )
            value = (pos, pos + size)
            pos += size
        else:
            raise ModelFormatError(
                f"not a valid ONNX protobuf: wire type {wire} at byte {pos} (groups or garbage)."
            )
        yield number, wire, value


def _text(buf: Any, span: tuple[int, int]) -> str:
    raw = bytes(buf[span[0] : span[1]])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFormatError(f"not a valid ONNX protobuf: a string that is not UTF-8 "
                               f"({raw[:40]!r}).") from e


def _locations(buf: Any, span: tuple[int, int], kind: str, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        raise ModelFormatError(f"not a valid ONNX file: messages nested over {MAX_DEPTH} deep.")
    if kind == "tensor":
        for number, wire, value in fields(buf, *span):
            if number == _TENSOR_EXTERNAL_DATA and wire == _LENGTH:
                entry = {n: _text(buf, v) for n, w, v in fields(buf, *value) if w == _LENGTH}
                if entry.get(_ENTRY_KEY) == "location":
                    yield entry.get(_ENTRY_VALUE, "")
        return
    children = _TENSOR_PATHS[kind]
    for number, wire, value in fields(buf, *span):
        if number in children and wire == _LENGTH:
            yield from _locations(buf, value, children[number], depth + 1)


def external_data_locations(buf: Any) -> list[str]:
    """The `location` of every tensor stored as external data in a serialized ModelProto
    (initializers, Constant attributes, sparse tensors, sub-graphs and functions), in file order.

    Args:
        buf: The model file's bytes (or an mmap of it).

    Raises:
        ModelFormatError: `buf` is not a valid protobuf message.
    """
    return list(_locations(buf, (0, len(buf)), "model", 0))


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _encode_varint(number << 3 | _VARINT) + _encode_varint(value)
    payload = value.encode() if isinstance(value, str) else value
    return _encode_varint(number << 3 | _LENGTH) + _encode_varint(len(payload)) + payload


def identity_model() -> bytes:
    """A serialized ModelProto: float `x` (1) → Identity → `y`, opset 13, IR version 8. Every
    execution provider runs it, so a session on it shows whether a provider can load at all."""

    def tensor(name: str) -> bytes:  # ValueInfoProto: name, TypeProto.tensor_type(float, [1])
        shape = _field(1, _field(1, 1))  # TensorShapeProto.dim(dim_value=1)
        return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))

    node = _field(1, "x") + _field(2, "y") + _field(4, "Identity")
    graph = _field(1, node) + _field(2, "doctor") + _field(11, tensor("x")) + _field(
        12, tensor("y"))
    return _field(1, 8) + _field(8, _field(2, 13)) + _field(7, graph)
