"""A synthetic labelled image dataset of shapes, made locally with Pillow and numpy.

It lets the whole pipeline (train, export, score) run in tests and demos without downloading
anything. Each image holds one shape on a noisy gradient background with small clutter, so a
small CNN must learn the shape rather than a colour or a pixel count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from toolkit.demo.folder import check_maker_args

SHAPE_CLASSES: tuple[str, ...] = ("circle", "cross", "square", "star", "triangle")

_MIN_SIDE, _MAX_SIDE = 72, 112  # Larger than a 64 px model input, so resizing is exercised.
_SUPERSAMPLE = 4  # Drawn at 4x and downsampled, which gives antialiased edges cheaply.
_MIN_CONTRAST = 70.0  # Luminance gap (0-255) between shape and background, so a shape never fades.
_LUMA = np.array([0.299, 0.587, 0.114])


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ _LUMA)


def _shape_polygon(name: str, rng: np.random.Generator, radius: float) -> np.ndarray:
    """Return the vertices of a shape centred on the origin, rotated at random.

    Args:
        name: One of SHAPE_CLASSES other than "circle".
        rng: Generator for the rotation and proportions.
        radius: Radius of the circle the shape fits in.

    Returns:
        An (n, 2) array of x, y vertices.
    """
    theta = rng.uniform(0.0, 2.0 * np.pi)
    if name == "square":
        angles = theta + np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full(4, radius)
    elif name == "triangle":
        angles = theta + np.arange(3) * 2 * np.pi / 3
        radii = np.full(3, radius)
    elif name == "star":
        angles = theta + np.arange(10) * np.pi / 5
        # A deep inner radius keeps the five points visible after downsampling to 64 px.
        radii = np.where(np.arange(10) % 2 == 0, radius, radius * rng.uniform(0.38, 0.5))
    elif name == "cross":
        # Thick bars (25-35% of the size) so a cross never looks like two thin clutter lines.
        h = radius * rng.uniform(0.25, 0.35)
        r = radius / np.sqrt(1 + (h / radius) ** 2)  # Arm corners stay inside the radius.
        pts = np.array([(h, h), (h, r), (-h, r), (-h, h), (-r, h), (-r, -h),
                        (-h, -h), (-h, -r), (h, -r), (h, -h), (r, -h), (r, h)])
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        return pts @ rot.T
    else:
        raise ValueError(f"Unknown polygon shape {name!r}; valid: square, triangle, star, cross.")
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _background(rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a float (side, side, 3) gradient image and the colours at its two ends."""
    start = rng.uniform(0, 255, size=3)
    # A gentle gradient: strong enough to defeat a flat-colour shortcut, weak enough that one
    # fill colour can contrast with both ends.
    end = np.clip(start + rng.uniform(-45, 45, size=3), 0, 255)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ramp = np.linspace(0.0, 1.0, side)
    t = ramp[None, :] * np.cos(angle) + ramp[:, None] * np.sin(angle)
    t = (t - t.min()) / (t.max() - t.min())
    return start + t[..., None] * (end - start), np.stack([start, end])


def _add_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int) -> None:
    """Draw a few thin lines, small dots and short arcs, each smaller than any main shape."""
    max_extent = 0.25 * side  # The main shape spans at least 35% of the side.
    for _ in range(rng.integers(2, 7)):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x, y = rng.uniform(0, side, size=2)
        kind = rng.integers(3)
        if kind == 0:
            length, angle = rng.uniform(0.3, 1.0) * max_extent, rng.uniform(0, 2 * np.pi)
            end = (x + length * np.cos(angle), y + length * np.sin(angle))
            draw.line([(x, y), end], fill=colour, width=int(rng.integers(1, 3)))
        elif kind == 1:
            r = rng.uniform(1.0, 2.5)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
        else:
            r = rng.uniform(0.2, 0.5) * max_extent
            start = rng.uniform(0, 360)
            draw.arc([x - r, y - r, x + r, y + r], start, start + rng.uniform(40, 160),
                     fill=colour, width=1)


def _contrasting_fill(rng: np.random.Generator, ends: np.ndarray) -> np.ndarray:
    """A fill colour resampled until it stands out from both background gradient ends, so that
    every shape (every label) is visible."""
    while True:
        fill = rng.uniform(0, 255, size=3)
        if min(abs(_luminance(fill) - _luminance(e)) for e in ends) >= _MIN_CONTRAST:
            return fill


def _paste_shape(canvas: Image.Image, name: str, rng: np.random.Generator,
                 centre: tuple[float, float], radius: float, fill: np.ndarray) -> None:
    """Draw shape `name` of `radius` at `centre` in `fill` onto `canvas`, antialiased (drawn
    at `_SUPERSAMPLE`× and reduced)."""
    side, s = canvas.width, _SUPERSAMPLE
    cx, cy = centre
    mask = Image.new("L", (side * s, side * s), 0)
    draw = ImageDraw.Draw(mask)
    if name == "circle":
        draw.ellipse([s * (cx - radius), s * (cy - radius), s * (cx + radius), s * (cy + radius)],
                     fill=255)
    else:
        pts = (_shape_polygon(name, rng, radius) + (cx, cy)) * s
        draw.polygon([tuple(p) for p in pts], fill=255)
    # reducing_gap box-reduces most of the way first: LANCZOS quality at a fraction of the cost.
    mask = mask.resize((side, side), Image.LANCZOS, reducing_gap=2.0)
    canvas.paste(Image.new("RGB", (side, side), tuple(int(c) for c in fill.round())), (0, 0),
                 mask)


def _render(name: str, rng: np.random.Generator) -> Image.Image:
    """Render one RGB image holding one shape of class `name`."""
    side = int(rng.integers(_MIN_SIDE, _MAX_SIDE + 1))
    base, ends = _background(rng, side)
    canvas = Image.fromarray(base.round().astype(np.uint8), "RGB")
    _add_clutter(ImageDraw.Draw(canvas), rng, side)

    fill = _contrasting_fill(rng, ends)
    radius = rng.uniform(0.35, 0.75) * side / 2
    # Up to 5% of the side may fall outside the image: nearly, not always fully, inside.
    slack = 0.05 * side
    cx, cy = rng.uniform(radius - slack, side - radius + slack, size=2)

    _paste_shape(canvas, name, rng, (cx, cy), radius, fill)

    # Noise over everything, shape included, so edges are not perfectly clean.
    noisy = np.asarray(canvas, dtype=np.float32)
    noisy += rng.uniform(3.0, 10.0) * rng.standard_normal(noisy.shape, dtype=np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8), "RGB")


def make_shapes(out: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write a synthetic labelled image dataset as PNG files.

    The layout is one folder per class, `out/<class>/<class>_00000.png` ..., which is the
    layout the folder datasets read.

    Args:
        out: Folder to create; it must not exist or be empty.
        per_class: Number of images for each of SHAPE_CLASSES.
        seed: Seed; the same seed writes byte-identical files.

    Returns:
        The number of files written.

    Raises:
        ValueError: If per_class is not an int >= 1 or seed is not an int >= 0.
        FileExistsError: If `out` is a file or a non-empty folder.
    """
    out = check_maker_args("make_shapes", out, per_class, seed)

    written = 0
    for class_index, name in enumerate(SHAPE_CLASSES):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            # One generator per image, keyed by (seed, class, index): an image does not depend
            # on per_class or on the order images are made in.
            rng = np.random.default_rng([seed, class_index, i])
            # Noise barely compresses, so a higher level costs time and saves little space.
            _render(name, rng).save(folder / f"{name}_{i:05d}.png", compress_level=1)
            written += 1
    return written
