"""Short labelled video clips synthesised here (nothing is downloaded): `toolkit data make motion`.

A shape (square, triangle, bar or cross) on a cluttered background does one of four things:
`move` (slides in a straight line), `grow`, `shrink` or `rotate` (turns in place), with random
colours, sizes, speeds, directions and starting points; every shape also jitters a little. Classes
differ only by how the frames change, so a model must look across frames; `grow` and `shrink`
are the same frames in opposite orders. Clips are 12–20 frames at 8–15 fps, mostly MP4 (H.264),
one in five WebM (VP9), so that the demo itself exercises the decoder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from toolkit.demo.folder import check_maker_args

MOTION_CLASSES: tuple[str, ...] = ("grow", "move", "rotate", "shrink")
SIZE = 96  # pixels (even: H.264's 4:2:0 needs it); larger than a 64 px model input
_SUPERSAMPLE = 2


def _outline(kind: str, cx: float, cy: float, size: float, angle: float) -> list[tuple]:
    """Polygon of a shape centred at (cx, cy), `size` across, turned by `angle` radians."""
    h = size / 2
    if kind == "square":
        points = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif kind == "triangle":
        points = [(0, -h), (h, h * 0.8), (-h, h * 0.8)]
    elif kind == "bar":
        points = [(-h, -h / 3), (h, -h / 3), (h, h / 3), (-h, h / 3)]
    else:  # cross
        t = h / 3
        points = [(-t, -h), (t, -h), (t, -t), (h, -t), (h, t), (t, t), (t, h), (-t, h), (-t, t),
                  (-h, t), (-h, -t), (-t, -t)]
    c, s = math.cos(angle), math.sin(angle)
    return [(_SUPERSAMPLE * (cx + x * c - y * s), _SUPERSAMPLE * (cy + x * s + y * c))
            for x, y in points]


def _clip(kind: str, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    n = int(rng.integers(12, 21))
    fps = int(rng.integers(8, 16))
    shape = str(rng.choice(["square", "triangle", "bar", "cross"]))
    background = rng.integers(0, 256, 3)
    colour = (background + rng.integers(80, 176, 3)) % 256  # clearly unlike the background
    clutter = [(rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(2, 6),
                tuple(int(v) for v in rng.integers(0, 256, 3))) for _ in range(rng.integers(3, 9))]
    size = rng.uniform(16, 28)
    cx, cy = rng.uniform(30, SIZE - 30, 2)
    angle = rng.uniform(0, 2 * math.pi)
    heading = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(1.5, 3.0) * 15 / n  # the whole move spans about the same distance
    spin = rng.choice([-1, 1]) * rng.uniform(0.15, 0.35)
    scale = rng.uniform(1.8, 2.6) ** (1 / (n - 1))  # per frame
    if kind == "shrink":
        size *= scale ** (n - 1)
        scale = 1 / scale
    if kind == "move":  # start so that the whole path stays in the frame
        cx -= math.cos(heading) * speed * n / 2
        cy -= math.sin(heading) * speed * n / 2
    frames = []
    for i in range(n):
        x, y, s, a = cx, cy, size, angle
        if kind == "move":
            x, y = cx + math.cos(heading) * speed * i, cy + math.sin(heading) * speed * i
        elif kind in ("grow", "shrink"):
            s = size * scale**i
        else:
            a = angle + spin * i
        x, y = x + rng.normal(0, 0.7), y + rng.normal(0, 0.7)  # hand-held jitter
        image = Image.new("RGB", (SIZE * _SUPERSAMPLE,) * 2, tuple(int(v) for v in background))
        draw = ImageDraw.Draw(image)
        for px, py, r, c in clutter:
            k = _SUPERSAMPLE
            draw.ellipse((k * (px - r), k * (py - r), k * (px + r), k * (py + r)), fill=c)
        draw.polygon(_outline(shape, x, y, s, a), fill=tuple(int(v) for v in colour))
        frames.append(np.asarray(image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)))
    return frames, fps


def _write(path: Path, frames: list[np.ndarray], fps: int, codec: str) -> None:
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_motion(out: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write `per_class` clips of each of MOTION_CLASSES to `out/<class>/<class>_NNNNN.mp4|webm`.

    Args:
        out: A folder that does not exist yet or is empty.
        per_class: Clips per class.
        seed: Seed of the clips' content: the same seed draws the same frames (the encoded files
            may still differ in a few bytes between runs: FFmpeg's colour conversion and the
            encoders are not bit-exact).

    Returns:
        The number of files written.
    """
    out = check_maker_args("make_motion", out, per_class, seed)
    written = 0
    for class_index, kind in enumerate(MOTION_CLASSES):
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, class_index, i])
            frames, fps = _clip(kind, rng)
            webm = rng.random() < 0.2
            path = folder / f"{kind}_{i:05d}.{'webm' if webm else 'mp4'}"
            _write(path, frames, fps, "libvpx-vp9" if webm else "libx264")
            written += 1
    return written
