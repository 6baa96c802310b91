"""`glyphs`: ten characters drawn by hundreds of installed fonts, labelled by the character
(image, 32×32 grayscale, 10 classes).

Source: the TrueType and OpenType font files (.ttf, .otf) shipped by the Debian font packages in
REQUIRES: DejaVu, Liberation, GNU FreeFont, URW base35 (the PostScript 35 clones), TeX Gyre,
Noto, Caladea, Carlito, Linux Libertine, Cantarell, EB Garamond, Roboto, Open Sans, Lato,
Comic Neue, Computer Modern Unicode, Gentium, Charis, Andika, STIX, Hack, Inconsolata, Fira Code,
Quicksand, Lobster, Asana Math, Go, the ADF families, Isabella, Breip, DKG handwriting,
Beteckna, Cabin and League Spartan; `corpus.json` lists the package versions and every font file
used with its split.

Classes: the characters A, G, R, S, e, g, k, y, & and @ (folders `A` … `y`, `ampersand`,
`at`); no digits. A font is used only if its character map has all ten and each draws ink unlike
its .notdef glyph; fonts whose ten clean renders are byte-identical to an earlier font's (the
same design in another package or file) are skipped.

Sample: one PNG (mode "L", 32×32, white ink on black) per font, character and draw: the glyph
is rendered at 128 px by FreeType (Pillow), cropped to its ink, scaled so its longer side is
70–90 % of the frame, rotated by up to ±10°, shifted by up to ±6 % of the frame, centred on a
128×128 canvas and reduced to 32×32 (Lanczos). The jitter comes from a random.Random seeded
with the corpus seed, the font's path, the character and the draw number; DRAWS renders are made
per font and character.

Split: by font file, so test fonts are never seen in training: the font files are ordered by
the SHA-256 of their path and every fourth is a test font (~75/25). Styles of one family
(Regular, Bold, Italic) are separate files and may fall on both sides. Deterministic: same
installed fonts, FreeType and Pillow → byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

from corpora.debian import file_owners, versions

NAME = "glyphs"
MODALITY = "image"
REQUIRES = ("fonts-dejavu-core", "fonts-dejavu-extra", "fonts-liberation", "fonts-freefont-ttf",
            "fonts-urw-base35", "fonts-texgyre", "fonts-noto-core", "fonts-crosextra-caladea",
            "fonts-crosextra-carlito", "fonts-linuxlibertine", "fonts-cantarell",
            "fonts-ebgaramond", "fonts-roboto-unhinted", "fonts-open-sans", "fonts-lato",
            "fonts-comic-neue", "fonts-cmu", "fonts-sil-gentium", "fonts-sil-charis",
            "fonts-sil-andika", "fonts-stix", "fonts-hack", "fonts-inconsolata",
            "fonts-firacode", "fonts-quicksand", "fonts-lobster", "fonts-oflb-asana-math",
            "fonts-go", "fonts-adf-accanthis", "fonts-adf-gillius", "fonts-adf-universalis",
            "fonts-adf-berenis", "fonts-adf-baskervald", "fonts-adf-tribun", "fonts-adf-verana",
            "fonts-adf-ikarius", "fonts-adf-oldania", "fonts-adf-romande", "fonts-isabella",
            "fonts-breip", "fonts-dkg-handwriting", "fonts-beteckna", "fonts-cabin",
            "fonts-league-spartan")

#: Class (folder name) → character.
CHARACTERS = {"A": "A", "G": "G", "R": "R", "S": "S", "e": "e", "g": "g", "k": "k", "y": "y",
              "ampersand": "&", "at": "@"}
SIZE = 32
CANVAS = 128  # drawn at 4× and reduced, for smooth edges
DRAWS = 1  # renders per font and character
SEED = 16
FONT_SUFFIXES = (".ttf", ".otf")


def _font_files() -> dict[Path, str]:
    """Font file → Debian package, for the fonts of REQUIRES (content duplicates dropped)."""
    wanted = set(REQUIRES)
    files: dict[Path, str] = {}
    seen: set[str] = set()
    for path, package in sorted(file_owners("/usr/share/").items()):
        if package not in wanted or not path.lower().endswith(FONT_SUFFIXES):
            continue
        file = Path(path)
        if file.is_symlink() or not file.is_file():
            continue
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            files[file] = package
    return files


def _has_characters(path: Path) -> bool:
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(path, lazy=True, fontNumber=0) as font:
            cmap = font.getBestCmap() or {}
    except (TTLibError, OSError, KeyError, AssertionError, ValueError):
        return False
    return all(ord(c) in cmap for c in CHARACTERS.values())


def _ink(font, text: str):
    """The glyph drawn on a black canvas, cropped to its ink (None when it draws nothing)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (CANVAS * 2, CANVAS * 2), 0)
    ImageDraw.Draw(image).text((CANVAS, CANVAS), text, fill=255, font=font, anchor="mm")
    box = image.getbbox()
    return image.crop(box) if box else None


def _place(ink, rng: random.Random | None):
    """`ink` scaled, rotated and shifted (no jitter when rng is None) onto the 32×32 frame."""
    from PIL import Image

    scale, angle, dx, dy = ((rng.uniform(0.70, 0.90), rng.uniform(-10, 10),
                             rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06))
                            if rng else (0.8, 0.0, 0.0, 0.0))
    factor = scale * CANVAS / max(ink.size)
    size = (max(1, round(ink.width * factor)), max(1, round(ink.height * factor)))
    glyph = ink.resize(size, Image.Resampling.LANCZOS)
    glyph = glyph.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    x = (CANVAS - glyph.width) // 2 + round(dx * CANVAS)
    y = (CANVAS - glyph.height) // 2 + round(dy * CANVAS)
    canvas.paste(glyph, (x, y))
    return canvas.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def _glyph_inks(path: Path) -> dict[str, object] | None:
    """Class → cropped ink of the font's glyph; None if the font lacks one of the characters."""
    from PIL import ImageFont

    if not _has_characters(path):
        return None
    try:
        font = ImageFont.truetype(str(path), CANVAS)
    except OSError:
        return None
    notdef = _ink(font, "\U0010fffd")  # a private-use code point no font maps: .notdef
    inks = {}
    for label, char in CHARACTERS.items():
        ink = _ink(font, char)
        if ink is None or (notdef is not None and ink.tobytes() == notdef.tobytes()
                           and ink.size == notdef.size):
            return None
        inks[label] = ink
    return inks


def build(out: Path) -> dict:
    fonts = _font_files()
    order = sorted(fonts, key=lambda p: (hashlib.sha256(str(p).encode()).hexdigest(), str(p)))
    files: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    used: dict[str, list[str]] = {"train": [], "test": []}
    designs: set[str] = set()
    stems: set[str] = set()
    for path in order:
        inks = _glyph_inks(path)
        if inks is None:
            continue
        design = hashlib.sha256(b"".join(_place(ink, None).tobytes()
                                         for ink in inks.values())).hexdigest()
        if design in designs:
            continue
        designs.add(design)
        split = "test" if (len(designs) - 1) % 4 == 3 else "train"
        used[split].append(str(path))
        stem = path.stem.replace(" ", "_")
        while stem in stems:  # same file name in two packages' folders
            stem += "_"
        stems.add(stem)
        for label, ink in inks.items():
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for draw in range(DRAWS):
                rng = random.Random(f"{SEED}:{path}:{label}:{draw}")
                (folder / f"{stem}_{draw}.png").write_bytes(_png(_place(ink, rng)))
                files[split][label] = files[split].get(label, 0) + 1
    return {
        "source": __doc__.split("\n\n")[1].replace("\n", " "),
        "classes": list(CHARACTERS),
        "characters": CHARACTERS,
        "files": files,
        "packages": versions({fonts[Path(p)] for split in used.values() for p in split}),
        "fonts": used,
        "seed": SEED,
    }
