"""Tests for toolkit.demo.shapes: real PNG files written to a tmp folder and read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit.demo.shapes import SHAPE_CLASSES, make_shapes


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def test_layout_count_and_images(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    assert make_shapes(out, per_class=4, seed=0) == 4 * len(SHAPE_CLASSES)
    assert sorted(p.name for p in out.iterdir()) == sorted(SHAPE_CLASSES)
    for name in SHAPE_CLASSES:
        names = sorted(p.name for p in (out / name).iterdir())
        assert names == [f"{name}_{i:05d}.png" for i in range(4)]
        for path in (out / name).iterdir():
            with Image.open(path) as image:
                assert image.format == "PNG"
                assert image.mode == "RGB"
                width, height = image.size
                pixels = np.asarray(image)
            assert width == height and 72 <= width <= 112
            # A blank or flat image would mean no shape was drawn.
            assert pixels.std() > 10


def test_sizes_vary(tmp_path: Path) -> None:
    make_shapes(tmp_path / "s", per_class=6, seed=3)
    sizes = {Image.open(p).size for p in _files(tmp_path / "s")}
    assert len(sizes) > 5


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    make_shapes(tmp_path / "a", per_class=3, seed=7)
    make_shapes(tmp_path / "b", per_class=3, seed=7)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def test_different_seed_different_images(tmp_path: Path) -> None:
    make_shapes(tmp_path / "a", per_class=3, seed=0)
    make_shapes(tmp_path / "b", per_class=3, seed=1)
    pairs = zip(_files(tmp_path / "a"), _files(tmp_path / "b"), strict=True)
    assert all(x.read_bytes() != y.read_bytes() for x, y in pairs)


def test_image_does_not_depend_on_per_class(tmp_path: Path) -> None:
    # Per-image generators: asking for more images must not change the first ones.
    make_shapes(tmp_path / "few", per_class=2, seed=5)
    make_shapes(tmp_path / "many", per_class=5, seed=5)
    for few in _files(tmp_path / "few"):
        many = tmp_path / "many" / few.relative_to(tmp_path / "few")
        assert few.read_bytes() == many.read_bytes()


def test_classes_differ_within_one_seed(tmp_path: Path) -> None:
    # Image i of each class must not be the same picture with a different label.
    make_shapes(tmp_path / "s", per_class=1, seed=0)
    blobs = {p.read_bytes() for p in _files(tmp_path / "s")}
    assert len(blobs) == len(SHAPE_CLASSES)


def test_shape_stands_out_from_background(tmp_path: Path) -> None:
    # A cheap check that the label is visible: the border is mostly background, and a good part
    # of the image (the shape) must differ from the border's median luminance by far more than
    # the gradient and noise do.
    make_shapes(tmp_path / "s", per_class=5, seed=2)
    luma = np.array([0.299, 0.587, 0.114])
    for path in _files(tmp_path / "s"):
        pixels = np.asarray(Image.open(path), dtype=np.float64) @ luma
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        gap = np.abs(pixels - np.median(border))
        # The smallest shape (a star of 35 % diameter) covers ~3.5 % of the image, drawn >= 70
        # luminance away from both gradient ends.
        assert np.mean(gap > 35) > 0.03, path


@pytest.mark.parametrize("per_class", [0, -1, 2.5, "3", True])
def test_bad_per_class(tmp_path: Path, per_class: object) -> None:
    with pytest.raises(ValueError, match=r"per_class must be an int >= 1\. Got"):
        make_shapes(tmp_path / "s", per_class=per_class)  # type: ignore[arg-type]
    assert not (tmp_path / "s").exists()


def test_bad_seed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"seed must be an int >= 0\. Got -1"):
        make_shapes(tmp_path / "s", per_class=1, seed=-1)


def test_non_empty_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"not empty.*old\.txt.*another folder or delete it"):
        make_shapes(out, per_class=1)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


def test_out_is_a_file(tmp_path: Path) -> None:
    out = tmp_path / "s"
    out.write_text("")
    with pytest.raises(FileExistsError, match="is a file"):
        make_shapes(out, per_class=1)


def test_empty_out_and_missing_parents_are_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert make_shapes(tmp_path / "empty", per_class=1) == len(SHAPE_CLASSES)
    assert make_shapes(tmp_path / "a" / "b", per_class=1) == len(SHAPE_CLASSES)
