"""Training data: the run's split of a labelled folder (or, for text, a labelled table), read
through the runtime's decoders and table reader."""

from __future__ import annotations

import functools
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
from toolkit_deploy.errors import DatasetError, DecodeError, ends_run, error_message
from toolkit_deploy.files import hash_file
from toolkit_deploy.pathtext import path_from_text, path_text
from toolkit_deploy.tables import TextRow, read_table

#: (path relative to the data folder, as text (`pathtext`: a name that is not UTF-8 is quoted),
#: or row number in a table; class index, or for multi-label data a tuple of 0/1 per class:
#: `toolkit.training.labelsets`)
Items = tuple[tuple[str, Any], ...]

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
        source: `folders` (the data had train/val/test folders), `random` (a seeded, stratified
            split of a labelled folder made by the run), `table` (the same, of the rows of a
            labelled table of texts; items name rows by their 0-based position) or `tables` (a
            multi-label folder of train/val/test tables).
        seed: Seed of a random split.
    """

    classes: tuple[str, ...]
    train: Items
    val: Items
    test: Items
    source: str
    seed: int

    @property
    def multilabel(self) -> bool:
        """Whether items hold label sets (multi-hot tuples) rather than class indices."""
        return any(isinstance(t, tuple) for part in (self.train, self.val, self.test)
                   for _, t in part[:1])

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
        items = {n: tuple((str(p), tuple(map(int, t)) if isinstance(t, list) else int(t))
                          for p, t in data[n]) for n in ("train", "val", "test")}
        return cls(tuple(data["classes"]), source=data["source"], seed=data["seed"], **items)


def _items(files: LabelledFiles, data_dir: Path) -> Items:
    if files.unlisted:
        folder, why = files.unlisted[0]
        raise DatasetError(f"{len(files.unlisted)} folders of {path_text(str(data_dir))} cannot "
                           f"be listed, e.g. {path_text(str(folder))}: {why} Training would "
                           "silently lack their files; make them readable, or move them out.")
    return tuple(
        (path_text(p.relative_to(data_dir).as_posix()), t)
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


@functools.lru_cache(maxsize=2)
def _read_table(path: Path, size: int, mtime_ns: int, text_column: str, label_column: str,
                encoding: str | None) -> tuple[TextRow, ...]:
    """The rows of a table, read once per run (the split, the tokenizer and every split's
    samples all need them); `size` and `mtime_ns` make a changed file be read again."""
    return tuple(read_table(path, text_column=text_column, label_column=label_column,
                            encoding=encoding))


def read_labelled_table(path: Path, data: Any) -> tuple[TextRow, ...]:
    """The rows of a labelled table of texts (`--data FILE` of a text recipe), all usable.

    Raises:
        DatasetError: The recipe is not a text recipe, or some rows lack a text or label.
    """
    if not hasattr(data, "text_column"):
        raise DatasetError(f"--data {path} is a file; this recipe trains on a labelled folder "
                           "DIR/<class>/<file>.")
    stat = path.stat()
    rows = _read_table(path, stat.st_size, stat.st_mtime_ns, data.text_column,
                       data.label_column, data.decoder_options.get("encoding"))
    bad = [r for r in rows if r.error]
    if bad:
        raise DatasetError(f"{path}: {len(bad)} rows cannot be trained on, e.g. row {bad[0].id}: "
                           f"{bad[0].error} Fix or remove them.")
    return rows


def make_split(
    data_dir: str | os.PathLike,
    extensions: tuple[str, ...],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    data: Any = None,
) -> Split:
    """Use the data's train/val/test folders, or make a seeded stratified split.

    With train/ but no val/, a validation share is taken from train/; without test/, the held-out
    figures come from val. A `data_dir` that is a file is a labelled table of texts, read with the
    columns of the recipe's data section `data`.
    """
    data_dir = Path(data_dir)
    rng = np.random.default_rng(seed)
    if data_dir.is_file():
        rows = read_labelled_table(data_dir, data)
        classes = tuple(sorted({r.label for r in rows}))
        items = tuple((str(i), classes.index(r.label)) for i, r in enumerate(rows))
        return _random_split(classes, items, val_fraction, test_fraction, rng, seed, "table",
                             data_dir)
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
    return _random_split(files.classes, _items(files, data_dir), val_fraction, test_fraction, rng,
                         seed, "random", data_dir)


def make_label_set_split(data_dir: Path, data: Any, val_fraction: float, test_fraction: float,
                         seed: int) -> Split:
    """The split of a multi-label table, or folder of train/val/test tables
    (`toolkit.training.labelsets.label_set_parts`)."""
    from toolkit.training.labelsets import label_set_parts

    classes, train, val, test, source = label_set_parts(data_dir, data, val_fraction,
                                                        test_fraction, seed)
    return Split(classes, train, val, test, source, seed)


def _random_split(classes: tuple[str, ...], items: Items, val_fraction: float,
                  test_fraction: float, rng: np.random.Generator, seed: int, source: str,
                  data_dir: Path) -> Split:
    rest, test = _stratified(items, test_fraction, rng)
    # val_fraction is a share of the whole data set, like test_fraction.
    train, val = _stratified(rest, val_fraction / max(1e-9, 1 - test_fraction), rng)
    if not val and not test:
        raise DatasetError(
            f"{data_dir} is too small to hold out any sample (every class has one sample). Add "
            "samples, or provide DIR/train and DIR/val folders."
        )
    return Split(classes, train, val, test, source, seed)


def fingerprint(data_dir: str | os.PathLike, split: Split) -> str:
    """sha256 over the paths (or table rows), labels and bytes of everything the run uses."""
    digest = hashlib.sha256()
    table = Path(data_dir).is_file()
    if split.multilabel:
        from toolkit.training.labelsets import label_set_fingerprint

        return label_set_fingerprint(Path(data_dir), split, digest)
    for name in ("train", "val", "test"):
        for rel, target in getattr(split, name):
            digest.update(f"{name}\0{rel}\0{target}\0".encode())
            if not table:
                hash_file(digest, Path(data_dir, path_from_text(rel)))
    if table:
        hash_file(digest, Path(data_dir))
    return digest.hexdigest()


@dataclass(frozen=True)
class Samples:
    """Inputs of a split as the decoder takes them, with their targets and readable names.

    Attributes:
        sources: File paths, or the texts of a table's rows.
        targets: Class index of each source.
        names: How errors name each source (a path, or `table.csv row 7`).
    """

    sources: tuple[Any, ...]
    targets: tuple[int, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.sources)


def split_samples(data_dir: str | os.PathLike, items: Items, data: Any = None) -> Samples:
    """The samples of `items` (a split's train, val or test) of the data at `data_dir`."""
    data_dir = Path(data_dir)
    targets = tuple(t for _, t in items)
    if items and isinstance(items[0][1], tuple):
        from toolkit.training.labelsets import label_set_sources

        sources, names = label_set_sources(data_dir, items, data)
        return Samples(sources, targets, names)
    if data_dir.is_file():
        rows = read_labelled_table(data_dir, data)
        picked = [rows[int(rel)] for rel, _ in items]
        return Samples(tuple(r.text for r in picked), targets,
                       tuple(f"{data_dir} row {r.id}" for r in picked))
    paths = tuple(data_dir / path_from_text(rel) for rel, _ in items)
    return Samples(paths, targets, tuple(path_text(str(p)) for p in paths))


class DecodedFiles(Dataset):
    """Samples of a split, decoded by the runtime's decoder into (tensor, class index)."""

    def __init__(self, samples: Samples, decoder: Decoder) -> None:
        self.samples = samples
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        try:
            array = self.decoder(self.samples.sources[index])
        except BaseException as e:  # a Rust panic (tokenizers) derives from BaseException
            # Whatever the file provokes in a decoder library (SyntaxError from a malformed
            # EXIF block, struct.error, MemoryError, ...) stops training with a message naming
            # the file, never a bare traceback; only what `ends_run` says passes as it is.
            if ends_run(e):
                raise
            detail = str(e) if isinstance(e, DecodeError) else error_message(e)
            raise DecodeError(
                f"Cannot read training sample {self.samples.names[index]}: {detail} Fix or "
                "remove it."
            ) from e
        if getattr(self.decoder, "windowed", False):
            array = array[0]  # a clip longer than the model's window trains on its first one
        target = self.samples.targets[index]
        if isinstance(target, tuple):  # a label set: the multi-hot float targets of BCE
            return torch.from_numpy(array), torch.tensor(target, dtype=torch.float32)
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


def _signature(sources: tuple[Any, ...]) -> tuple:
    """The sources, with each file's size and modification time: a changed file is decoded
    again."""
    def one(source: Any) -> Any:
        if isinstance(source, Path):
            stat = source.stat()
            return (str(source), stat.st_size, stat.st_mtime_ns)
        return source

    return tuple(one(s) for s in sources)


#: Decoded splits kept for the next run in this process (a sweep's trials share their data):
#: key → CachedFiles. Only the last few are kept.
_SHARED: dict[tuple, CachedFiles] = {}
_SHARED_MAX = 3


def decoded_dataset(samples: Samples, decoder: Decoder, cache: str, sample_bytes: int) -> Dataset:
    """The split's samples, cached in memory when `cache` is `ram`, or `auto` and they fit in
    `AUTO_CACHE_BYTES`. A split cached by an earlier run in this process with the same samples and
    decoder (type and spec) is reused, not decoded again."""
    files = DecodedFiles(samples, decoder)
    if not samples:  # an empty validation split (train.merge_val): nothing to decode or share
        return files
    if not (cache == "ram" or (cache == "auto"
                               and len(samples) * sample_bytes <= AUTO_CACHE_BYTES)):
        return files
    key = (type(decoder).__qualname__, repr(getattr(decoder, "spec", None)),
           getattr(decoder, "encoding", None), _signature(samples.sources))
    if key not in _SHARED:
        while len(_SHARED) >= _SHARED_MAX:
            _SHARED.pop(next(iter(_SHARED)))
        _SHARED[key] = CachedFiles(files)
    return _SHARED[key]
