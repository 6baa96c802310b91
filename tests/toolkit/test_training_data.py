from collections import Counter
from pathlib import Path

import pytest

from toolkit.training.data import Split, fingerprint, make_split, split_samples
from toolkit_deploy.errors import DatasetError

EXT = (".png",)


def touch(root: Path, counts: dict[str, int]) -> Path:
    for label, n in counts.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (root / label / f"{i:03d}.png").write_bytes(f"{label}{i}".encode())
    return root


def test_random_split_is_stratified_disjoint_and_seeded(tmp_path: Path) -> None:
    touch(tmp_path, {"a": 50, "b": 30})
    split = make_split(tmp_path, EXT, val_fraction=0.2, test_fraction=0.1, seed=0)
    assert split.source == "random" and split.classes == ("a", "b")
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(map(len, parts)) == 80 and not (parts[0] & parts[1] or parts[0] & parts[2])
    assert Counter(t for _, t in split.test) == {0: 5, 1: 3}
    assert Counter(t for _, t in split.val) == {0: 10, 1: 6}
    assert make_split(tmp_path, EXT, 0.2, 0.1, seed=0) == split
    assert make_split(tmp_path, EXT, 0.2, 0.1, seed=1) != split
    assert Split.from_dict(split.to_dict()) == split
    assert split.held_out == ("test", split.test)


def test_split_folders_are_used_and_val_is_carved_from_train_when_missing(tmp_path: Path) -> None:
    touch(tmp_path / "train", {"a": 10, "b": 10})
    touch(tmp_path / "test", {"a": 2, "b": 3})
    split = make_split(tmp_path, EXT, val_fraction=0.2, test_fraction=0.5, seed=0)
    assert split.source == "folders"
    assert len(split.test) == 5 and all(p.startswith("test/") for p, _ in split.test)
    assert len(split.val) == 4 and all(p.startswith("train/") for p, _ in split.val)
    touch(tmp_path / "val", {"a": 1, "c": 1})
    with pytest.raises(DatasetError, match=r"\['c'\] that are not labels"):
        make_split(tmp_path, EXT, 0.2, 0.1, seed=0)


def test_too_small_to_hold_anything_out(tmp_path: Path) -> None:
    touch(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(DatasetError, match="too small to hold out"):
        make_split(tmp_path, EXT, 0.1, 0.1, seed=0)


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    touch(tmp_path, {"a": 5, "b": 5})
    split = make_split(tmp_path, EXT, 0.2, 0.2, seed=0)
    before = fingerprint(tmp_path, split)
    assert before == fingerprint(tmp_path, split)
    (tmp_path / "a" / "000.png").write_bytes(b"changed")
    assert fingerprint(tmp_path, split) != before


def test_ram_cache_holds_exactly_what_the_decoder_gives(tmp_path: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from toolkit.training.data import CachedFiles, DecodedFiles, decoded_dataset, split_samples
    from toolkit_deploy.decoders import create_decoder
    from toolkit_deploy.errors import DecodeError
    from toolkit_deploy.spec import ImagePreprocess

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pixels = np.random.default_rng(i).integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    split = make_split(tmp_path, EXT, 0.0, 0.34, seed=0)
    decoder = create_decoder("image", ImagePreprocess(8, 8))
    samples = split_samples(tmp_path, split.train)
    lazy = decoded_dataset(samples, decoder, "none", 8 * 8 * 3)
    cached = decoded_dataset(samples, decoder, "ram", 8 * 8 * 3)
    auto = decoded_dataset(samples, decoder, "auto", 8 * 8 * 3)
    assert isinstance(lazy, DecodedFiles) and isinstance(cached, CachedFiles)
    assert isinstance(auto, CachedFiles)  # a few bytes fit the automatic budget
    for i in range(len(lazy)):
        assert torch.equal(lazy[i][0], cached[i][0]) and lazy[i][1] == cached[i][1]
    (tmp_path / split.train[0][0]).write_bytes(b"broken")
    with pytest.raises(DecodeError, match="Cannot read training sample"):
        decoded_dataset(samples, decoder, "ram", 8 * 8 * 3)


def test_a_file_that_makes_the_decoder_library_raise_names_itself_in_training(
        tmp_path: Path) -> None:
    import struct
    import zlib

    from toolkit.training.data import decoded_dataset, split_samples
    from toolkit_deploy.decoders import create_decoder
    from toolkit_deploy.errors import DecodeError
    from toolkit_deploy.spec import ImagePreprocess

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I",
                                                                       zlib.crc32(kind + data))

    def png(exif: bytes) -> bytes:  # a real 4×4 PNG with an eXIf chunk
        raw = b"".join(b"\x00" + b"\x80" * 12 for _ in range(4))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
                + chunk(b"eXIf", exif) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.png").write_bytes(png(b"II*\x00\x08\x00\x00\x00\x00\x00"))
    split = make_split(tmp_path, EXT, 0.0, 0.34, seed=0)
    decoder = create_decoder("image", ImagePreprocess(8, 8))
    samples = split_samples(tmp_path, split.train)
    bad = tmp_path / split.train[0][0]
    bad.write_bytes(png(b"XX\x00\x2a\x00\x00\x00\x08"))  # the 8 bytes: a SyntaxError
    for cache in ("none", "ram"):  # decoded when needed, or all up front
        with pytest.raises(DecodeError, match=rf"Cannot read training sample {bad}: The image's "
                                              r"EXIF metadata is malformed \(SyntaxError"):
            dataset = decoded_dataset(samples, decoder, cache, 8 * 8 * 3)
            [dataset[i] for i in range(len(dataset))]


def test_file_names_that_are_not_utf8_train_and_class_names_are_refused(shapes: Path,
                                                                         tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    from tests.toolkit.conftest import TINY
    from toolkit.recipe import load_recipe
    from toolkit.run import load_run
    from toolkit.training.trainer import train

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    first = sorted((data / "circle").iterdir())[0]
    bad = first.with_name(os.fsdecode(b"bad\xff") + first.name)
    first.rename(bad)
    split = make_split(data, EXT, 0.2, 0.2, seed=0)
    names = [rel for part in (split.train, split.val, split.test) for rel, _ in part]
    assert f'"circle/bad\\xff{first.name}"' in names  # the quoted form (toolkit_deploy.pathtext)
    fingerprint(data, split)  # reads every file, the badly named one included

    # The repository's recipe file (the built-in name resolves to the installed package's).
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "image-cnn.toml",
                         {**TINY, "model.channels": [4, 8], "model.hidden": [8],
                          "train.epochs": 1})
    run = train(recipe, data, tmp_path / "run", device="cpu", progress=False)
    saved = load_run(run.path).split  # split.json holds the quoted name, read back exactly
    items = (*saved.train, *saved.val, *saved.test)
    assert f'"circle/bad\\xff{first.name}"' in [rel for rel, _ in items]
    assert bad in split_samples(data, items).sources
    assert not list(run.path.glob("*.tmp"))

    # A class name becomes a label, which is text: a clear error, and no run folder debris.
    (data / "circle").rename(data / os.fsdecode(b"circl\xe9"))
    with pytest.raises(DatasetError, match=r'Class folder ".*circl\\xe9" has a name that is '
                                           "not UTF-8 text"):
        make_split(data, EXT, 0.2, 0.2, seed=0)
    refused = subprocess.run(
        [str(Path(sys.executable).with_name("toolkit")), "train",
         str(Path(__file__).parents[2] / "recipes" / "image-cnn.toml"), "--data", str(data),
         "--out", str(tmp_path / "refused")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stderr
    assert "not UTF-8 text" in refused.stderr and "Traceback" not in refused.stderr
    assert not list(tmp_path.glob("refused/*.tmp"))
