"""Training data: the run's split of a labelled folder, read through the runtime's decoders."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit_deploy.dataset import LabelledFiles, find_splits, read_labelled
from toolkit_deploy.decoders import Decoder
from toolkit_deploy.errors import DatasetError, DecodeError

Items = tuple[tuple[str, int], ...]  # (path relative to the data folder, class index)

#: `data.cache = "auto"` keeps a split in memory up to this size.
AUTO_CACHE_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class Split:
    """Which files a run trains, validates and tests on.

    Attributes:
        classes: Class names, in output order.
        train: Training items.
        val: Validation items (best checkpoint selection).
        test: Held-out items for the final figures and export parity (may be empty).
        source: `folders` (the data had train/val/test folders) or `random` (a seeded, stratified
            split made by the run; `seed` and the fractions are recorded).
        seed: Seed of a random split.
    """

    classes: tuple[str, ...]
    train: Items
    val: Items
    test: Items
    source: str
    seed: int

    @property
    def held_out(self) -> tuple[str, Items]:
        """The split that final figures and export parity use: test, else val."""
        return ("test", self.test) if self.test else ("val", self.val)

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": list(self.classes), "source": self.source, "seed": self.seed,
            **{name: [list(item) for item in getattr(self, name)]
               for name in ("train", "val", "test")},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        items = {n: tuple((str(p), int(t)) for p, t in data[n]) for n in ("train", "val", "test")}
        return cls(tuple(data["classes"]), source=data["source"], seed=data["seed"], **items)


def _items(files: LabelledFiles, data_dir: Path) -> Items:
    return tuple(
        (p.relative_to(data_dir).as_posix(), t)
        for p, t in zip(files.paths, files.targets, strict=True)
    )


def _stratified(items: Items, fraction: float, rng: np.random.Generator) -> tuple[Items, Items]:
    """Split off `fraction` of each class (at least one sample per class stays)."""
    keep, taken = [], []
    for target in sorted({t for _, t in items}):
        members = [it for it in items if it[1] == target]
        order = rng.permutation(len(members))
        n = min(len(members) - 1, round(len(members) * fraction))
        taken += [members[i] for i in order[:n]]
        keep += [members[i] for i in order[n:]]
    return tuple(sorted(keep)), tuple(sorted(taken))


def make_split(
    data_dir: str | os.PathLike,
    extensions: tuple[str, ...],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Split:
    """Use the data's train/val/test folders, or make a seeded stratified split.

    With train/ but no val/, a validation share is taken from train/; without test/, the held-out
    figures come from val.
    """
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    folders = find_splits(data_dir)
    if folders:
        train_files = read_labelled(folders["train"], extensions)
        classes = train_files.classes
        train = _items(train_files, data_dir)
        parts = {s: _items(read_labelled(folders[s], extensions, classes), data_dir)
                 for s in ("val", "test") if s in folders}
        if "val" not in parts:
            train, parts["val"] = _stratified(train, val_fraction, rng)
        return Split(classes, train, parts["val"], parts.get("test", ()), "folders", seed)
    files = read_labelled(data_dir, extensions)
    rest, test = _stratified(_items(files, data_dir), test_fraction, rng)
    # val_fraction is a share of the whole data set, like test_fraction.
    train, val = _stratified(rest, val_fraction / max(1e-9, 1 - test_fraction), rng)
    if not val and not test:
        raise DatasetError(
            f"{data_dir} is too small to hold out any sample (every class has one file). Add "
            "samples, or provide DIR/train and DIR/val folders."
        )
    return Split(files.classes, train, val, test, "random", seed)


def fingerprint(data_dir: str | os.PathLike, split: Split) -> str:
    """sha256 over the paths, labels and bytes of every file the run uses."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        for rel, target in getattr(split, name):
            digest.update(f"{name}\0{rel}\0{target}\0".encode())
            with open(Path(data_dir, rel), "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


class DecodedFiles(Dataset):
    """Items of a split, decoded by the runtime's decoder into (uint8 tensor, class index)."""

    def __init__(self, data_dir: str | os.PathLike, items: Items, decoder: Decoder) -> None:
        self.data_dir = Path(data_dir)
        self.items = items
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        rel, target = self.items[index]
        try:
            array = self.decoder(self.data_dir / rel)
        except DecodeError as e:
            raise DecodeError(
                f"Cannot read training sample {self.data_dir / rel}: {e} Fix or remove the file."
            ) from e
        return torch.from_numpy(array), target


class CachedFiles(Dataset):
    """`DecodedFiles` decoded once, up front, in a thread pool, and kept in memory as one uint8
    array: later epochs cost no decoding, and a bad file fails the run before training starts."""

    def __init__(self, files: DecodedFiles) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from toolkit_deploy.session import available_cores

        with ThreadPoolExecutor(available_cores()) as pool:
            arrays = list(pool.map(files.__getitem__, range(len(files))))
        self.samples = torch.stack([a for a, _ in arrays]) if arrays else torch.zeros(0)
        self.targets = [t for _, t in arrays]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.samples[index], self.targets[index]


def decoded_dataset(data_dir: Path, items: Items, decoder: Decoder, cache: str,
                    sample_bytes: int) -> Dataset:
    """The split's samples, cached in memory when `cache` is `ram`, or `auto` and they fit in
    `AUTO_CACHE_BYTES`."""
    files = DecodedFiles(data_dir, items, decoder)
    if cache == "ram" or (cache == "auto" and len(items) * sample_bytes <= AUTO_CACHE_BYTES):
        return CachedFiles(files)
    return files
