"""camera-motion: short clips of real photographs, each filmed by one virtual camera move.

Source: 37 photographs shipped as desktop wallpapers by Debian packages (the drawings, renders and
abstract art in the same packages are left out): 12 from `lomiri-wallpapers-16.04` (Ubuntu's
wallpaper-contest photos: a bridge, a dragonfly, mountains, a sunset, …), 2 from
`lomiri-wallpapers-20.04`, the 12 of `mate-backgrounds`' nature set (flowers, a ladybird, a dune,
rain drops, …) and 11 from `plasma-workspace-wallpapers` (boats at dusk, a forest path, a jetty in
fog, cups, …). Each picture is decoded once with Pillow and scaled so its short side is 360 px. A
clip is a square window moving over the picture, resampled with Pillow (bicubic, antialiased, at
sub-pixel positions) to 64×64 frames, 16 frames at 8 fps (2 s), and encoded by FFmpeg: 80 % MP4
H.264 (libx264, `-preset medium`, yuv420p, CRF 18–28) and 20 % WebM VP9 (libvpx-vp9, CRF 28–40).

Classes (the motion of the camera, not of the scene): zoom-in, zoom-out (the window shrinks or
grows by a factor 1.3–2.0 around a random centre that drifts up to 5 % of the window), pan-left,
pan-right (the camera turns left or right: the scene slides right or left in the frame by 30–90 %
of the window width), tilt-up, tilt-down (the same vertically: the scene slides down or up). Every
clip draws its window size (from 35 % of the picture's short side up to what the move leaves room
for), start position, speed, a drift across the move of up to ±10 % of its length, a linear or
ease-in-out speed profile, and in 40 % of the clips a hand-held shake (Gaussian, σ 0.25–0.75 output
pixels per frame).

Sizes: 75 train + 27 test clips per class (450 + 162 files), about 4 MB.

Split: by source picture, so test clips come only from pictures never seen in training. The sorted
picture names are shuffled with the corpus seed; the first 9 (a quarter) are test pictures. Each
class cycles through its split's pictures in its own seeded order, so every picture appears 2–3
times per class. `clips.csv` beside the splits lists every file with its picture, window, speed,
drift, profile, shake and codec. Note for training recipes: a horizontal flip turns pan-left into
pan-right, and reversing time swaps every class with its opposite; neither is label-preserving here.

Deterministic: one generator per clip seeded by (seed, split, class, index); Pillow's decoding and
resampling, single-threaded libx264/libvpx (`-threads 1`) and FFmpeg's bitexact muxing
(`-fflags +bitexact -flags:v +bitexact -map_metadata -1`) give the same bytes for the same
packages. Two encoders run at once; builds in about 2 minutes on two shared cores.
"""

from __future__ import annotations

import csv
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpora.debian import versions as debian_versions
from corpora.versions import debian_versions_matching, python_versions

NAME = "camera-motion"
MODALITY = "video"
REQUIRES = ("ffmpeg", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds",
            "plasma-workspace-wallpapers")

SEED = 16
CLASSES = ("zoom-in", "zoom-out", "pan-left", "pan-right", "tilt-up", "tilt-down")
SIZE = 64
FRAMES = 16
FPS = 8
PER_CLASS = {"train": 75, "test": 27}
TEST_PICTURES = 9  # a quarter of the 37
SHORT_SIDE = 360  # ≥ 5× the output, so even the largest window is downscaled, never blown up
WEBM_FRACTION = 0.2
ENCODERS = 2  # FFmpeg processes at once (the build machine has two shared cores)

_LOMIRI = "/usr/share/backgrounds"
_MATE = "/usr/share/backgrounds/mate/nature"
_PLASMA = "/usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
#: Picture name → (Debian package, file). Only photographs: each package's drawings, renders and
#: abstract pieces (Fossa, greentock, umang, Autumn, MilkyWay, …) are left out by hand.
PICTURES: dict[str, tuple[str, str]] = {
    **{name.split("_by_")[0].lower(): ("lomiri-wallpapers-16.04", f"{_LOMIRI}/{name}.jpg")
       for name in ("Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly",
                    "Picture_0B_by_freespace", "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede",
                    "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
                    "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi",
                    "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
                    "sunset_by_Aitzol_Berasategi")},
    **{name.split("_by_")[0].lower(): ("lomiri-wallpapers-20.04", f"{_LOMIRI}/{name}.jpg")
       for name in ("Infinite-Sea_by_Aury88", "Kleiber_by_Lukas_Baubkus")},
    **{name.lower(): ("mate-backgrounds", f"{_MATE}/{name}.jpg")
       for name in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
                    "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")},
    **{name.lower(): ("plasma-workspace-wallpapers", _PLASMA.format(name))
       for name in ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow",
                    "FallenLeaf", "Grey", "Kite", "OneStandsOut", "Path", "summer_1am")},
}


@dataclass(frozen=True)
class Move:
    """One clip's camera: a window (x, y, side) per frame in picture pixels, and what drew it."""

    boxes: np.ndarray  # FRAMES × 4: left, top, right, bottom
    info: dict


def load(path: str):
    """The picture at `path` as RGB, scaled so its short side is SHORT_SIDE px."""
    from PIL import Image

    with Image.open(path) as image:
        # JPEG's DCT scaling decodes a 4k photo at 1/4 or 1/8 size directly: ~10× faster.
        image.draft("RGB", (image.width * SHORT_SIDE // min(image.size),
                            image.height * SHORT_SIDE // min(image.size)))
        image = image.convert("RGB")
        scale = SHORT_SIDE / min(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)),
                            Image.Resampling.LANCZOS)


def profile(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Progress 0 → 1 over the frames: constant speed, or easing in and out as a person would."""
    t = np.linspace(0.0, 1.0, FRAMES)
    if rng.random() < 0.6:
        return t, "linear"
    return (1 - np.cos(np.pi * t)) / 2, "ease"


def move(kind: str, width: int, height: int, rng: np.random.Generator) -> Move:
    """The windows of camera move `kind` over a `width` × `height` picture."""
    progress, shape = profile(rng)
    short = min(width, height)
    if kind.startswith("zoom"):
        factor = rng.uniform(1.3, 2.0)
        large = rng.uniform(0.55, 0.95) * short
        # zoom-in goes from the large window to the small one; zoom-out the other way round.
        sides = large * factor ** (-progress if kind == "zoom-in" else progress - 1)
        cx = rng.uniform(large / 2, width - large / 2)
        cy = rng.uniform(large / 2, height - large / 2)
        drift = rng.uniform(-0.05, 0.05, size=2) * large
        centres = np.stack([cx + drift[0] * progress, cy + drift[1] * progress], axis=1)
        info = {"zoom": round(factor, 3), "window": round(large), "travel": 0.0}
    else:
        along_x = kind.startswith("pan")
        span, across = (width, height) if along_x else (height, width)
        travel = rng.uniform(0.3, 0.9)
        most = min(0.9 * short, span / (1 + travel))
        side = rng.uniform(min(0.35 * short, most), most)
        distance = travel * side
        start = rng.uniform(side / 2, span - side / 2 - distance)
        # pan-left/tilt-up: the camera turns left/up, so the window moves left/up in the picture
        # (the scene slides right/down in the frame).
        sign = -1.0 if kind in ("pan-left", "tilt-up") else 1.0
        if sign < 0:
            start += distance
        along = start + sign * distance * progress
        offset = rng.uniform(side / 2, across - side / 2)
        across_positions = offset + rng.uniform(-0.1, 0.1) * distance * progress
        sides = np.full(FRAMES, side)
        centres = np.stack([along, across_positions] if along_x else [across_positions, along],
                           axis=1)
        info = {"zoom": 1.0, "window": round(side), "travel": round(travel, 3)}
    shake = float(rng.uniform(0.25, 0.75)) if rng.random() < 0.4 else 0.0  # output pixels
    centres = centres + rng.standard_normal((FRAMES, 2)) * shake * sides[:, None] / SIZE
    half = sides[:, None] / 2
    # Shake or drift may push a window past the picture's edge: slide it back inside.
    centres = np.clip(centres, half, np.array([width, height]) - half)
    boxes = np.concatenate([centres - half, centres + half], axis=1)
    info |= {"profile": shape, "shake_px": round(shake, 2)}
    return Move(boxes, info)


def render(picture, boxes: np.ndarray) -> bytes:
    """The frames of `boxes` over `picture`, as raw RGB24 bytes for FFmpeg."""
    from PIL import Image

    frames = [np.asarray(picture.resize((SIZE, SIZE), Image.Resampling.BICUBIC,
                                        box=tuple(float(v) for v in box))) for box in boxes]
    return np.stack(frames).tobytes()


def encode(frames: bytes, path: Path, crf: int) -> None:
    """Encode raw RGB24 `frames` to `path` (.mp4: H.264, .webm: VP9), bit-exactly."""
    codec = (["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", str(crf), "-deadline", "good",
              "-cpu-used", "2", "-row-mt", "0"] if path.suffix == ".webm"
             else ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf)])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{SIZE}x{SIZE}", "-r", str(FPS), "-i", "-", *codec,
                    "-pix_fmt", "yuv420p", "-threads", "1", "-fflags", "+bitexact",
                    "-flags:v", "+bitexact", "-map_metadata", "-1", str(path)],
                   input=frames, check=True, capture_output=True)


def split_pictures() -> dict[str, list[str]]:
    """Picture names per split: a seeded shuffle of the sorted names, the first few for test."""
    names = sorted(PICTURES)
    order = np.random.default_rng(SEED).permutation(len(names))
    return {"train": sorted(names[i] for i in order[TEST_PICTURES:]),
            "test": sorted(names[i] for i in order[:TEST_PICTURES])}


def build(out: Path) -> dict:
    missing = [path for _, path in PICTURES.values() if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"Pictures missing although their packages are installed: "
                                f"{', '.join(missing)}. Reinstall the packages of {NAME}: "
                                f"apt-get install --reinstall -y {' '.join(REQUIRES[1:])}")
    pictures = {name: load(path) for name, (_, path) in sorted(PICTURES.items())}
    splits = split_pictures()
    rows, files = [], {}
    with ThreadPoolExecutor(ENCODERS) as pool:
        jobs = []
        for s, split in enumerate(("train", "test")):
            files[split] = {}
            for c, kind in enumerate(CLASSES):
                folder = out / split / kind
                folder.mkdir(parents=True)
                order = np.random.default_rng([SEED, s, c]).permutation(splits[split])
                for i in range(PER_CLASS[split]):
                    rng = np.random.default_rng([SEED, s, c, i])
                    name = str(order[i % len(order)])
                    picture = pictures[name]
                    camera = move(kind, picture.width, picture.height, rng)
                    webm = rng.random() < WEBM_FRACTION
                    crf = int(rng.integers(28, 41) if webm else rng.integers(18, 29))
                    path = folder / f"{kind}_{i:04d}.{'webm' if webm else 'mp4'}"
                    jobs.append(pool.submit(encode, render(picture, camera.boxes), path, crf))
                    rows.append({"path": path.relative_to(out).as_posix(), "label": kind,
                                 "picture": name, "package": PICTURES[name][0], **camera.info,
                                 "codec": "vp9" if webm else "h264", "crf": crf})
                files[split][kind] = PER_CLASS[split]
        for job in jobs:
            job.result()  # re-raises an encoder failure
    with open(out / "clips.csv", "w", newline="", encoding="utf-8") as table:
        writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return {
        "source": (
            f"{len(PICTURES)} photographs installed as desktop wallpapers by Debian packages "
            "(lomiri-wallpapers-16.04, lomiri-wallpapers-20.04, mate-backgrounds' nature set, "
            "plasma-workspace-wallpapers; drawings and abstract art left out), filmed by a "
            "virtual camera: a square window zooming in or out, panning left or right, or "
            "tilting up or down over the picture with random size, position, speed, drift, "
            f"speed profile and hand-held shake, resampled by Pillow to {SIZE}x{SIZE}, "
            f"{FRAMES} frames at {FPS} fps, encoded by FFmpeg as MP4 H.264 (80 %) or WebM VP9 "
            "(20 %). Split by source picture: test pictures are never seen in training."
        ),
        "classes": list(CLASSES),
        "files": files,
        "packages": {**debian_versions(REQUIRES),
                     **debian_versions_matching(("libx264-*", "libvpx[0-9]*")),
                     **python_versions(("numpy", "pillow"))},
        "seed": SEED,
        "split": "by source picture (test pictures never in train)",
        "pictures": {split: {name: PICTURES[name][1] for name in names}
                     for split, names in splits.items()},
        "clips": "clips.csv",
    }
