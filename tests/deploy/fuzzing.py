"""Hypothesis settings and strategies shared by the fuzz tests (runtime and training stack).

The fuzz tests run a fixed, derandomized set of examples so that CI is reproducible and quick.
`TOOLKIT_FUZZ_SCALE=N` runs N times as many, with fresh random seeds, to hunt for new bugs.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = int(os.environ.get("TOOLKIT_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    """Settings of one fuzz test: `examples` examples (times SCALE), each under 5 s (a decoder
    that takes longer on a small input is a bug too), no example database left in the tree."""
    return settings(max_examples=examples * SCALE, deadline=5000, database=None,
                    derandomize=SCALE == 1, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


#: Values that break length and size fields: zero, sign bits, all ones.
_SPECIAL = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80",
            b"\x01\x00\x00\x00", b"\x00\x00\x00\x01"]


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_edits: int = 6) -> bytes:
    """`base` with 1 to `max_edits` edits: bit flips, byte changes, special 32-bit values,
    truncation, insertion, deletion or repetition of a chunk; half of them in the first 64 bytes,
    where headers are."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_edits))):
        if not data:
            break
        last = len(data) - 1
        pos = draw(st.one_of(st.integers(0, min(63, last)), st.integers(0, last)))
        kind = draw(st.sampled_from(["flip", "byte", "special", "truncate", "insert", "delete",
                                     "repeat"]))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF])
                             | st.integers(0, 255))
        elif kind == "special":
            data[pos : pos + 4] = draw(st.sampled_from(_SPECIAL))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            chunk = data[pos : pos + draw(st.integers(1, 32))]
            data[pos:pos] = chunk * draw(st.integers(1, 8))
    return bytes(data)
