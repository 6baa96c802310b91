"""Demo datasets generated on the spot (nothing is downloaded): `toolkit data make KIND OUT`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def _shapes(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.shapes import make_shapes

    return make_shapes(out, per_class=per_class, seed=seed)


def _shapes_multi(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.shapes_multi import make_shapes_multi

    return make_shapes_multi(out, per_class=per_class, seed=seed)


def _comments(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.comments import make_comments

    return make_comments(out, per_class=per_class, seed=seed)


def _docstrings(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.docstrings import make_docstrings

    return make_docstrings(out, per_class=per_class, seed=seed)


def _sounds(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.sounds import make_sounds

    return make_sounds(out, per_class=per_class, seed=seed)


def _motion(out: Path, per_class: int, seed: int) -> int:
    from toolkit.demo.motion import make_motion

    return make_motion(out, per_class=per_class, seed=seed)


#: Kind → (description, maker(out, per_class, seed) -> number of files written).
KINDS: dict[str, tuple[str, Callable[[Path, int, int], int]]] = {
    "shapes": ("images: 5 shape classes with random colour, size, position, rotation, clutter",
               _shapes),
    "shapes-multi": ("images, multi-label: 0-3 of 4 shapes per image, written as "
                     "OUT/labels.csv (path, labels joined by |) and OUT/images/", _shapes_multi),
    "text": ("texts: shop comments (praise, complaint, question, spam) in English, Chinese and "
             "French", _comments),
    "docstrings": ("texts: docstrings of this Python's standard library, by topic (5 classes)",
                   _docstrings),
    "sounds": ("audio: 6 classes of synthesised sound events (tones, buzzes, chirps up and down, "
               "noise bursts, clicks) at mixed rates and formats", _sounds),
    "motion": ("video: 4 classes of motion (grow, move, rotate, shrink) of shapes over clutter, "
               "MP4 and WebM", _motion),
}


def make_dataset(kind: str, out: str | os.PathLike, per_class: int = 200, seed: int = 0) -> int:
    """Write the demo dataset `kind` to `out` as `out/<class>/<file>` (a multi-label kind: as a
    table, `out/labels.csv`); returns the file count."""
    if kind not in KINDS:
        raise ValueError(f"Unknown dataset kind {kind!r}; valid kinds: {', '.join(KINDS)}.")
    return KINDS[kind][1](Path(out), per_class, seed)
