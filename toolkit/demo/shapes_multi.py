"""Synthetic multi-label images: each holds none, one or several shapes, in a labelled table.

`make_shapes_multi(OUT)` writes `OUT/images/*.png` and `OUT/labels.csv` with the columns `path`
(relative to OUT) and `labels` (the shapes in the image, joined by `|`; empty when it holds
none), the layout `train.task = "multilabel"` reads.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from toolkit.demo.folder import check_maker_args
from toolkit.demo.shapes import _background, _contrasting_fill, _paste_shape
from toolkit_deploy.labelsets import LABELS_COLUMN, PATH_COLUMN, join_labels

#: The labels: every image holds each of these at most once.
MULTI_SHAPES: tuple[str, ...] = ("circle", "cross", "square", "triangle")
_SIDE = 64
#: How many shapes an image holds, and how often: some images hold none (the empty set).
_COUNTS, _COUNT_P = (0, 1, 2, 3), (0.1, 0.35, 0.35, 0.2)


def _render(shapes: list[str], rng: np.random.Generator) -> Image.Image:
    """One image holding `shapes`, each in its own quadrant."""
    base, ends = _background(rng, _SIDE)
    canvas = Image.fromarray(base.round().astype(np.uint8), "RGB")
    cells = rng.permutation(4)[: len(shapes)]
    for name, cell in zip(shapes, cells, strict=True):
        fill = _contrasting_fill(rng, ends)
        radius = rng.uniform(0.16, 0.23) * _SIDE
        cx = (cell % 2 + 0.5) * _SIDE / 2 + rng.uniform(-2, 2)
        cy = (cell // 2 + 0.5) * _SIDE / 2 + rng.uniform(-2, 2)
        _paste_shape(canvas, name, rng, (cx, cy), radius, fill)
    noisy = np.asarray(canvas, dtype=np.float32)
    noisy += rng.uniform(3.0, 8.0) * rng.standard_normal(noisy.shape, dtype=np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB")


def make_shapes_multi(out: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write `per_class` × 4 images with random label sets over `MULTI_SHAPES`, and their table.

    Returns:
        The number of images written.

    Raises:
        ValueError: If per_class is not an int >= 1 or seed is not an int >= 0.
        FileExistsError: If `out` is a file or a non-empty folder.
    """
    out = check_maker_args("make_shapes_multi", out, per_class, seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(per_class * len(MULTI_SHAPES)):
        rng = np.random.default_rng([seed, i])  # an image does not depend on per_class
        count = int(rng.choice(_COUNTS, p=_COUNT_P))
        shapes = sorted(rng.choice(MULTI_SHAPES, size=count, replace=False).tolist())
        rel = f"images/{i:05d}.png"
        _render(shapes, rng).save(out / rel, compress_level=1)
        rows.append({PATH_COLUMN: rel, LABELS_COLUMN: join_labels(shapes)})
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [PATH_COLUMN, LABELS_COLUMN])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
