"""Finding input files: a sorted, recursive walk that says what it left out; and hashing files.

Hidden files and folders (names starting with '.') and files whose extension the model's decoder
does not read are not inputs; they are counted so that commands can report them, never dropped
silently. A folder that cannot be listed (no permission, a path past PATH_MAX) is kept with its
error, so that commands make it an error row: its files are not silently lost.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileList:
    """Input files under a root, in a deterministic order.

    Attributes:
        root: The folder walked (or the file's parent when a single file was given).
        files: Input files, sorted by their path relative to `root`.
        ignored: Count of skipped files per extension ('' for none, 'hidden' for dotfiles).
        unlisted: Folders under `root` that could not be listed, each with why, sorted.
    """

    root: Path
    files: tuple[Path, ...]
    ignored: Counter = field(default_factory=Counter)
    unlisted: tuple[tuple[Path, str], ...] = ()

    def relative(self, path: Path) -> str:
        """`path` relative to the root, with '/' separators (stable across platforms)."""
        return path.relative_to(self.root).as_posix()

    def describe_ignored(self) -> str:
        """E.g. "ignored 3 files: 2 .txt, 1 hidden" or '' when nothing was ignored."""
        if not self.ignored:
            return ""
        parts = [f"{n} {ext or '(no extension)'}" for ext, n in sorted(self.ignored.items())]
        return f"ignored {sum(self.ignored.values())} files: {', '.join(parts)}"


def select(listing: FileList, include: tuple[str, ...] = (),
           exclude: tuple[str, ...] = ()) -> FileList:
    """The files whose path relative to the root matches an `include` glob (all when none is
    given) and no `exclude` glob (fnmatch: `*` also crosses `/`); the others are counted as
    ignored."""
    from fnmatch import fnmatch

    if not include and not exclude:
        return listing
    kept, ignored = [], Counter(listing.ignored)
    for path in listing.files:
        rel = listing.relative(path)
        if include and not any(fnmatch(rel, g) for g in include):
            ignored["not --include"] += 1
        elif any(fnmatch(rel, g) for g in exclude):
            ignored["--exclude"] += 1
        else:
            kept.append(path)
    return FileList(listing.root, tuple(kept), ignored, listing.unlisted)


def list_files(root: str | os.PathLike, extensions: tuple[str, ...]) -> FileList:
    """All files under `root` whose lower-cased extension is in `extensions`, sorted.

    Symlinked files are followed; symlinked folders are not descended into, so a symlink loop can
    never hang the walk. A `root` that is a file is returned as the only input whatever its
    extension, since the user named it. Folders that cannot be listed are in `unlisted`.

    Raises:
        FileNotFoundError: `root` does not exist.
    """
    root = Path(root)
    if root.is_file():
        return FileList(root.parent, (root,))
    if not root.is_dir():
        raise FileNotFoundError(f"Input {root} does not exist; expected a file or a folder.")
    found: list[Path] = []
    ignored: Counter = Counter()
    unlisted: list[tuple[Path, str]] = []

    def unlistable(error: OSError) -> None:
        unlisted.append((Path(error.filename), f"The folder cannot be listed, so its files were "
                         f"not read: {error.strerror or error}."))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
        hidden = [d for d in dirnames if d.startswith(".")]
        ignored["hidden"] += len(hidden)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        # A folder named like an input ("x.png/") is listed as an input, so that it becomes an
        # error row instead of vanishing.
        named = [d for d in dirnames if os.path.splitext(d)[1].lower() in extensions]
        found += [Path(dirpath, d) for d in named]
        dirnames[:] = [d for d in dirnames if d not in named]
        for name in filenames:
            if name.startswith("."):
                ignored["hidden"] += 1
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in extensions:
                found.append(Path(dirpath, name))
            else:
                ignored[ext] += 1
    ignored = Counter({k: v for k, v in ignored.items() if v})
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    unlisted.sort(key=lambda u: u[0].relative_to(root).as_posix())
    return FileList(root, tuple(found), ignored, tuple(unlisted))


def hash_file(digest: Any, path: str | os.PathLike) -> None:
    """Feed a file's bytes to `digest` (a `hashlib` object), a MiB at a time."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def sha256_of(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    hash_file(digest, path)
    return digest.hexdigest()
