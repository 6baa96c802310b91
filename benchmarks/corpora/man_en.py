"""`man-en`: English manual pages labelled by their manual section (text, 6 classes).

Source: the English man pages installed under /usr/share/man/man{1,2,3,5,7,8} (not the translated
subfolders) by whichever Debian packages are installed: manpages and manpages-dev (the Linux
man-pages project: system calls, C library, file formats, overviews), coreutils, util-linux,
systemd, iproute2, git-man, openssl, dpkg, the X11 -dev packages and many more; `corpus.json`
lists every package a sample came from, with its version. google-cloud-cli is left out: its
16,631 generated `gcloud …` reference pages would make section 1 one package's formulaic text.

Classes (section → class): 1 user-commands, 2 system-calls, 3 library-functions,
5 file-formats, 7 overviews, 8 administration. Sections 4 (devices, 38 pages) and 6 (games,
1 page) have too few pages and are not used.

Sample: one UTF-8 `.txt` per page, rendered by groff (`groff -k -t -man -Tutf8`, 80 columns,
continuous, no hyphenation, no overstriking), with the title line (`LS(1) … User Commands`) and
the footer line removed, the section suffix of every cross-reference dropped (`stat(2)` → `stat`,
since a page's references mostly point into its own section), blank-line runs squeezed, and cut
at a line end to its first ~2,000 characters. The NAME section stays. The file name is the page
name without its section suffix. Pages that are symlinks or `.so` redirects to another page are
skipped, as are pages that render to under 200 characters and pages whose text duplicates an
earlier one.

Split: within each section the pages are ordered by the SHA-256 of their file name and taken
in that order (rendering only as many as needed) up to 400; every fourth taken page is a test
page: 300 train + 100 test per section, or 3:1 of what a smaller section has (section 5 has
about 200 usable pages, section 2 about 270). Deterministic: same installed packages and groff →
byte-identical files.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corpora.debian import file_owners, versions

NAME = "man-en"
MODALITY = "text"
REQUIRES = ("groff-base", "manpages", "manpages-dev")

MAN_ROOT = Path("/usr/share/man")
#: Manual section → class name.
SECTIONS = {"1": "user-commands", "2": "system-calls", "3": "library-functions",
            "5": "file-formats", "7": "overviews", "8": "administration"}
EXCLUDED_PACKAGES = frozenset({"google-cloud-cli"})
PER_CLASS = 400  # pages taken per section at most; every fourth one is a test page
MAX_CHARS = 2000
MIN_CHARS = 200
SEED = 0  # no RNG: the order is the SHA-256 of the page file name; recorded for the manifest

GROFF = ["groff", "-k", "-t", "-man", "-Tutf8", "-rcR=1", "-rLL=80n", "-rLT=80n", "-rHY=0",
         "-P-cbou"]
# `stat(2)`, `SSL_read(3ssl)`, `systemd.unit(5)`: the section in a cross-reference.
CROSS_REFERENCE = re.compile(r"(?<=[\w.:+\-])\([1-9][A-Za-z]*\)")


def _source(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _is_redirect(source: bytes) -> bool:
    """A `.so other/page.N` stub (the page is another page under a second name)."""
    for line in source.splitlines()[:20]:
        if line.startswith((b'.\\"', b"'\\\"")) or not line.strip():
            continue
        return line.startswith(b".so ")
    return False


def _page_name(path: Path) -> str:
    stem = path.name.removesuffix(".gz").rsplit(".", 1)[0]  # drop the section suffix
    return re.sub(r"[^A-Za-z0-9._+\-]", "_", stem) or "_"


def _render(path: Path) -> str | None:
    """The page's plain text, cleaned as the module docstring says; None if unusable."""
    try:
        source = _source(path)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if _is_redirect(source):
        return None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    done = subprocess.run(GROFF, input=source, capture_output=True, env=env, check=False)
    lines = [line.rstrip() for line in done.stdout.decode("utf-8", "replace").splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    lines = lines[1:-1]  # the title line and the footer line (continuous rendering: one each)
    text = CROSS_REFERENCE.sub("", "\n".join(lines))
    text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    if len(text) > MAX_CHARS:
        cut = text.rfind("\n", 0, MAX_CHARS)
        text = text[: cut if cut > MAX_CHARS * 3 // 4 else MAX_CHARS].rstrip()
    return text + "\n" if len(text) >= MIN_CHARS else None


def _candidates(section: str, owners: dict[str, str]) -> list[Path]:
    """The section's real page files (no symlinks), in SHA-256-of-file-name order."""
    folder = MAN_ROOT / f"man{section}"
    pages = [p for p in folder.iterdir()
             if p.is_file() and not p.is_symlink()
             and owners.get(str(p), "") not in EXCLUDED_PACKAGES]
    return sorted(pages, key=lambda p: (hashlib.sha256(p.name.encode()).hexdigest(), p.name))


def build(out: Path) -> dict:
    owners = file_owners(str(MAN_ROOT) + "/")
    seen_texts: set[str] = set()
    files: dict[str, dict[str, int]] = {"train": {}, "test": {}}
    used_packages: set[str] = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for section, label in SECTIONS.items():
            candidates = _candidates(section, owners)
            taken: list[tuple[Path, str]] = []
            names: set[str] = set()
            for start in range(0, len(candidates), 100):
                if len(taken) >= PER_CLASS:
                    break
                chunk = candidates[start : start + 100]
                for path, text in zip(chunk, pool.map(_render, chunk), strict=True):
                    if text is None or text in seen_texts or len(taken) >= PER_CLASS:
                        continue
                    seen_texts.add(text)
                    taken.append((path, text))
            for i, (path, text) in enumerate(taken):
                split = "test" if i % 4 == 3 else "train"
                name = _page_name(path)
                while name in names:  # same name from two packages (`.1` and `.1ssl`)
                    name += "_"
                names.add(name)
                folder = out / split / label
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{name}.txt").write_bytes(text.encode("utf-8"))
                files[split][label] = files[split].get(label, 0) + 1
                used_packages.add(owners.get(str(path), "unknown"))
    used_packages.discard("unknown")
    return {
        "source": __doc__.split("\n\n")[1].replace("\n", " "),
        "classes": list(SECTIONS.values()),
        "files": files,
        "packages": versions(used_packages | set(REQUIRES)),
        "seed": SEED,
        "render": " ".join(GROFF),
        "max_chars": MAX_CHARS,
    }
