"""What a file holds, from its first bytes: for messages that refuse a file, so that a pickle
given as a model or weights is named as one (and never opened), rather than "not valid"."""

from __future__ import annotations

import os

#: Leading bytes → what they are. Pickle protocols 2-5 start with PROTO (0x80) and the version.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive (torch.save's format since PyTorch 1.6: it holds a pickle)"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF", "an HDF5 file (e.g. a Keras model)"),
    (b"%PDF", "a PDF document"),
)


def what_it_is(path: str | os.PathLike) -> str:
    """A few words on what the file at `path` holds, e.g. `a Python pickle (...)`; `something
    else` when its first bytes say nothing known."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"a file that cannot be read ({e.strerror or e})"
    if not head:
        return "an empty file"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (what torch.save wrote before PyTorch 1.6, or pickle.dump)"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    # safetensors: an 8-byte little-endian header length, then the JSON header.
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 30:
        return "a safetensors file (weights, not a model graph)"
    return "something else"


def is_pickle_like(what: str) -> bool:
    """Whether `what_it_is` named a pickle or torch.save's zip of one."""
    return "pickle" in what
