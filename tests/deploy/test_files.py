import os
from pathlib import Path

import pytest

from toolkit_deploy.dataset import find_splits, read_labelled
from toolkit_deploy.errors import DatasetError
from toolkit_deploy.files import list_files

EXT = (".png", ".jpg")


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_walk_is_recursive_sorted_and_reports_what_it_skips(tmp_path: Path) -> None:
    touch(tmp_path, "b/2.png", "b/1.JPG", "a/z/9.png", "a/readme.txt", ".hidden/x.png", "c/.x.png")
    listing = list_files(tmp_path, EXT)
    assert [listing.relative(p) for p in listing.files] == ["a/z/9.png", "b/1.JPG", "b/2.png"]
    assert listing.ignored == {".txt": 1, "hidden": 2}
    assert listing.describe_ignored() == "ignored 3 files: 1 .txt, 2 hidden"


def test_folder_named_like_an_input_is_listed_and_symlink_loops_do_not_hang(tmp_path: Path) -> None:
    touch(tmp_path, "a/1.png")
    (tmp_path / "a" / "dir.png").mkdir()
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # a folder symlink back to the root
    listing = list_files(tmp_path, EXT)
    assert [listing.relative(p) for p in listing.files] == ["a/1.png", "a/dir.png"]


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_files(tmp_path / "nope", EXT)


def test_labelled_folder_and_its_errors(tmp_path: Path) -> None:
    touch(tmp_path, "cat/1.png", "cat/sub/2.png", "dog/3.jpg")
    data = read_labelled(tmp_path, EXT)
    assert data.classes == ("cat", "dog") and data.targets == (0, 0, 1)
    with pytest.raises(DatasetError, match=r"class folders \['dog'\] that are not labels"):
        read_labelled(tmp_path, EXT, classes=("cat", "bird"))
    subset = read_labelled(tmp_path, EXT, classes=("bird", "cat", "dog"))
    assert subset.targets == (1, 1, 2)  # indices follow the model's labels
    touch(tmp_path, "loose.png")
    with pytest.raises(DatasetError, match="outside class folders"):
        read_labelled(tmp_path, EXT)


def test_empty_class_and_no_class(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    touch(tmp_path, "cat/notes.txt")
    with pytest.raises(DatasetError, match="holds no files with extensions"):
        read_labelled(tmp_path, EXT)
    with pytest.raises(DatasetError, match="no class folders"):
        read_labelled(tmp_path / "cat", EXT)


def test_split_layout_is_detected(tmp_path: Path) -> None:
    assert find_splits(tmp_path) == {}
    touch(tmp_path, "train/cat/1.png", "test/cat/2.png")
    assert set(find_splits(tmp_path)) == {"train", "test"}
