"""`icons`: desktop icon-theme images labelled by their freedesktop context (image, 48×48 RGB,
6 classes).

Source: the icons of the installed icon themes, from each theme's context folders: the 48×48
PNGs of Oxygen (oxygen-icon-theme, KDE), GNOME (gnome-icon-theme), MATE and Menta
(mate-icon-theme) and Adwaita (adwaita-icon-theme), and the SVGs of elementary
(elementary-icon-theme, its 48 px drawings) and Tango (tango-icon-theme, scalable), rendered at
48×48 by rsvg-convert (librsvg2-bin). Symbolic (single-colour) icons, symlinked aliases,
Adwaita's context-less `legacy` folder, and files byte-identical to one already taken (MATE and
GNOME share many) are skipped.

Classes (contexts): actions (toolbar and menu actions), apps (applications), devices (hardware),
mimetypes (file types), places (folders, network places), status (notifications, states).
Smaller contexts (categories, emblems, emotes) are not used.

Sample: one PNG (mode "RGB", 48×48) per icon file: its alpha composited onto white; an icon not
exactly 48×48 is centred on a white 48×48 frame (larger ones are skipped). The file name is
`<theme>_<icon name>.png`.

Split: by icon name, so an icon's drawings in the other themes are on the same side: a name is
a test name when the SHA-256 of it is 3 modulo 4 (~25 %). In each class the icons are taken in
SHA-256-of-`theme/name` order, up to 300 train and 100 test (actions, mimetypes and status have
more; apps, devices and places fewer: about 270, 200 and 150 icons). Deterministic: same
installed themes, librsvg and Pillow → byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

from corpora.debian import file_owners, versions

NAME = "icons"
MODALITY = "image"
REQUIRES = ("oxygen-icon-theme", "gnome-icon-theme", "mate-icon-theme", "adwaita-icon-theme",
            "elementary-icon-theme", "tango-icon-theme", "librsvg2-bin")

ICONS = Path("/usr/share/icons")
#: Theme → the folder of its 48×48 icons of `{context}` (in ICONS).
THEMES = {"oxygen": "oxygen/base/48x48/{context}", "gnome": "gnome/48x48/{context}",
          "mate": "mate/48x48/{context}", "menta": "menta/48x48/{context}",
          "adwaita": "Adwaita/48x48/{context}", "elementary": "elementary/{context}/48",
          "tango": "Tango/scalable/{context}"}
#: Theme → its folder names for contexts that it names otherwise.
FOLDER_NAMES = {"elementary": {"mimetypes": "mimes"}}
SUFFIXES = (".png", ".svg")
CONTEXTS = ("actions", "apps", "devices", "mimetypes", "places", "status")
SIZE = 48
PER_SPLIT = {"train": 300, "test": 100}  # icons per class at most
SEED = 0  # no RNG: the split and order are SHA-256 of the icon name; recorded for the manifest


def _digest(text: str) -> int:
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)


def _icon_files() -> dict[str, list[tuple[str, str, Path]]]:
    """Context → (theme, icon name, file) of each usable, distinct 48×48 PNG."""
    seen: set[str] = set()
    found: dict[str, list[tuple[str, str, Path]]] = {c: [] for c in CONTEXTS}
    for theme, folder in THEMES.items():
        for context in CONTEXTS:
            directory = ICONS / folder.format(context=FOLDER_NAMES.get(theme, {}).get(context,
                                                                                      context))
            if not directory.is_dir():
                continue
            for path in sorted(directory.iterdir()):
                if (path.is_symlink() or path.suffix not in SUFFIXES or ".symbolic" in path.name
                        or "-symbolic" in path.name):
                    continue
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest in seen:
                    continue
                seen.add(digest)
                found[context].append((theme, path.stem, path))
    return found


def _rgb_png(path: Path) -> bytes | None:
    """The icon on white, 48×48 RGB, as PNG bytes; None when unreadable or larger than 48×48."""
    from PIL import Image, UnidentifiedImageError

    source: Path | io.BytesIO = path
    if path.suffix == ".svg":
        rendered = subprocess.run(["rsvg-convert", "-w", str(SIZE), "-h", str(SIZE), str(path)],
                                  capture_output=True, check=False)
        if rendered.returncode != 0:
            return None
        source = io.BytesIO(rendered.stdout)
    try:
        with Image.open(source) as image:
            icon = image.convert("RGBA")
    except (OSError, UnidentifiedImageError):
        return None
    if icon.width > SIZE or icon.height > SIZE:
        return None
    frame = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 255))
    frame.alpha_composite(icon, ((SIZE - icon.width) // 2, (SIZE - icon.height) // 2))
    buffer = io.BytesIO()
    frame.convert("RGB").save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def build(out: Path) -> dict:
    owners = file_owners(str(ICONS) + "/")
    files: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    used: set[str] = set()
    for context, icons in _icon_files().items():
        for theme, name, path in sorted(icons, key=lambda t: (_digest(f"{t[0]}/{t[1]}"), t[:2])):
            split = "test" if _digest(name) % 4 == 3 else "train"
            if files[split].get(context, 0) >= PER_SPLIT[split]:
                continue
            data = _rgb_png(path)
            if data is None:
                continue
            folder = out / split / context
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{theme}_{name}.png").write_bytes(data)
            files[split][context] = files[split].get(context, 0) + 1
            used.add(owners.get(str(path), ""))
    used.discard("")
    return {
        "source": __doc__.split("\n\n")[1].replace("\n", " "),
        "classes": list(CONTEXTS),
        "files": files,
        "packages": versions(used | set(REQUIRES)),
        "seed": SEED,
    }
