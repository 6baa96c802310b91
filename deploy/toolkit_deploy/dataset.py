"""Labelled folders: `DIR/<class>/<file>`, optionally split into `DIR/train|val|test/<class>/…`.

Used by evaluation (here, torch-free) and by training, so both read a dataset the same way.
A class name is a label, stored as text in the model file, so a class folder whose name is not
UTF-8 is refused with the fix; the files below a class may have any names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from toolkit_deploy.errors import DatasetError
from toolkit_deploy.files import list_files
from toolkit_deploy.pathtext import path_text

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class LabelledFiles:
    """Files with their class, found under a labelled folder.

    Attributes:
        root: The folder whose subfolders are the classes.
        classes: Class names (subfolder names), sorted.
        paths: Files, sorted by class then relative path.
        targets: Index into `classes` for each path.
        ignored: Description of files left out (other extensions, hidden), '' if none.
        unlisted: Folders below the classes that could not be listed, each with why.
    """

    root: Path
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    targets: tuple[int, ...]
    ignored: str = ""
    unlisted: tuple[tuple[Path, str], ...] = ()

    def __len__(self) -> int:
        return len(self.paths)


def find_splits(root: str | os.PathLike) -> dict[str, Path]:
    """The split folders of `root` (`train`, `val`, `test`), or {} if it is a plain class folder.

    A folder counts as split when it has a `train/` subfolder that itself holds class folders.
    """
    root = Path(root)
    train = root / "train"
    if not (train.is_dir() and any(p.is_dir() for p in train.iterdir())):
        return {}
    return {s: root / s for s in SPLITS if (root / s).is_dir()}


def read_labelled(
    root: str | os.PathLike, extensions: tuple[str, ...], classes: tuple[str, ...] | None = None
) -> LabelledFiles:
    """List the files of a labelled folder `root/<class>/…` (any depth below the class folder).

    Args:
        root: Folder whose subfolders are classes.
        extensions: File extensions to take (the decoder's).
        classes: The expected class names (e.g. a model's labels). Folders not among them are an
            error; classes without a folder are allowed (a test set may lack some).

    Raises:
        DatasetError: `root` is missing, has no class folders, has unexpected classes, or a
            class folder's name is not UTF-8.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Data folder {root} does not exist; expected DIR/<class>/<file>.")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(
            f"{root} has no class folders; expected DIR/<class>/<file>, e.g. {root}/cat/1.png. "
            f"Found {len(loose)} loose files."
        )
    if loose:
        raise DatasetError(
            f"{root} has files outside class folders ({', '.join(loose[:3])}…); every file must "
            "be inside DIR/<class>/. Move them into a class folder or elsewhere."
        )
    if classes is not None:
        unknown = [path_text(f) for f in folders if f not in classes]
        if unknown:
            raise DatasetError(
                f"{path_text(str(root))} has class folders {unknown} that are not labels of the "
                f"model. Expected a subset of {list(classes)}."
            )
        names = tuple(classes)
    else:
        for folder in folders:
            if path_text(folder) != folder:
                raise DatasetError(
                    f"Class folder {path_text(str(root / folder))} has a name that is not UTF-8 "
                    "text (shown quoted, its other bytes as \\xHH); a class name becomes a "
                    "label in the model file, which is text. Rename the folder in UTF-8 (e.g. "
                    "convmv -f latin1 -t utf8 -r --notest DIR).")
        names = tuple(folders)
    paths: list[Path] = []
    targets: list[int] = []
    ignored = []
    unlisted: list[tuple[Path, str]] = []
    for name in folders:
        listing = list_files(root / name, extensions)
        unlisted += listing.unlisted
        if not listing.files and not listing.unlisted:
            raise DatasetError(
                f"Class folder {root / name} holds no files with extensions "
                f"{', '.join(extensions)}. Add samples or remove the folder."
            )
        paths += listing.files
        targets += [names.index(name)] * len(listing.files)
        if listing.ignored:
            ignored.append(f"{name}: {listing.describe_ignored()}")
    return LabelledFiles(root, names, tuple(paths), tuple(targets), "; ".join(ignored),
                         tuple(unlisted))
