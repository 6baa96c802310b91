"""Multi-label training data: the split of a labelled table (`toolkit_deploy.labelsets`), or of a
folder of `train` / `val` / `test` tables, into the run's items.

An item is `(rel, multi_hot)`: `rel` is the file's path relative to the tables' folder (images,
audio, video) or `TABLE:ROW` (text: the table's file name and the 0-based row), and `multi_hot`
a tuple of 0/1 per class, so a label set (empty included) is stored in `split.json` as it is.
`toolkit.training.data` builds its `Split` from these parts (this module sits below it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy import labelsets
from toolkit_deploy.errors import DatasetError
from toolkit_deploy.pathtext import path_text


def tables_folder(data_dir: Path) -> Path:
    """The folder the paths of a multi-label dataset are relative to."""
    return data_dir.parent if data_dir.is_file() else data_dir


def _rows(table: Path, data: Any) -> list[labelsets.LabelSetRow]:
    text = hasattr(data, "text_column")
    rows = labelsets.read_label_table(
        table, data.text_column if text else labelsets.PATH_COLUMN, labelsets.LABELS_COLUMN,
        data.decoder_options.get("encoding"), relative_paths=False)
    bad = [r for r in rows if r.error]
    if bad:
        raise DatasetError(f"{table}: {len(bad)} rows cannot be trained on, e.g. row {bad[0].id}: "
                           f"{bad[0].error} Fix or remove them.")
    return rows


def _items(table: Path, rows: list[labelsets.LabelSetRow], classes: tuple[str, ...],
           data: Any) -> Items:
    hot = labelsets.multi_hot(classes, [r.labels for r in rows]).astype(int)
    text = hasattr(data, "text_column")
    return tuple((f"{table.name}:{i}" if text else path_text(r.input), tuple(hot[i].tolist()))
                 for i, r in enumerate(rows))


#: (path or table row, multi-hot tuple) pairs, as `toolkit.training.data.Items`.
Items = tuple[tuple[str, tuple[int, ...]], ...]
#: classes, train, val, test and source of a `toolkit.training.data.Split`.
Parts = tuple[tuple[str, ...], Items, Items, Items, str]


def label_set_parts(data_dir: Path, data: Any, val_fraction: float, test_fraction: float,
                    seed: int) -> Parts:
    """The parts of the run's split of a multi-label table (seeded; every label keeps a
    training sample), or of the `train` / `val` / `test` tables of a folder (a label of val or
    test that train lacks is an error naming it).

    Raises:
        DatasetError: No table, missing columns, unusable rows, or labels missing from train.
    """
    rng = np.random.default_rng(seed)
    if data_dir.is_file():
        rows = _rows(data_dir, data)
        classes = tuple(sorted({x for r in rows for x in r.labels}))
        if not classes:
            raise DatasetError(f"{data_dir} has no labels at all; a multi-label table needs a "
                               f"{labelsets.LABELS_COLUMN!r} column naming some.")
        items = _items(data_dir, rows, classes, data)
        test, rest = _hold_out(items, test_fraction, rng)
        val, train = _hold_out(rest, val_fraction / max(1e-9, 1 - test_fraction), rng)
        if not val and not test:
            raise DatasetError(f"{data_dir} is too small to hold out any row while keeping every "
                               "label in training. Add rows, or give train/val tables.")
        return classes, train, val, test, "table"
    tables = labelsets.find_table_splits(data_dir)
    if not tables:
        raise DatasetError(
            f"--data {data_dir}: train.task = \"multilabel\" trains on a table (.csv or .jsonl) "
            f"with a {labelsets.PATH_COLUMN!r} (or text) column and a {labelsets.LABELS_COLUMN!r} "
            f"column (labels joined by {labelsets.SEPARATOR!r}; a JSON list in .jsonl), or on a "
            "folder holding train.csv (and val.csv, test.csv).")
    rows = {name: _rows(path, data) for name, path in tables.items()}
    classes = tuple(sorted({x for r in rows["train"] for x in r.labels}))
    for name in ("val", "test"):
        if name in rows:
            labelsets.check_known(classes, rows[name], str(tables[name]))
    parts = {name: _items(tables[name], rows[name], classes, data) for name in rows}
    train = parts["train"]
    if "val" not in parts:
        parts["val"], train = _hold_out(train, val_fraction, rng)
    return classes, train, parts["val"], parts.get("test", ()), "tables"


def _hold_out(items: Items, fraction: float, rng: np.random.Generator) -> tuple[Items, Items]:
    """(held out, kept): a seeded `fraction` of the rows, then rows moved back until every label
    of `items` has a kept row (the rarest labels' rows go back first)."""
    order = rng.permutation(len(items))
    n = round(len(items) * fraction)
    held, kept = [items[i] for i in order[:n]], [items[i] for i in order[n:]]
    counts = np.sum([t for _, t in kept], axis=0) if kept else np.zeros(len(items[0][1]))
    for label in np.flatnonzero(np.sum([t for _, t in items], axis=0) > 0):
        if counts[label] == 0:
            back = next(it for it in held if it[1][label])
            held.remove(back)
            kept.append(back)
            counts = counts + np.asarray(back[1])
    return tuple(sorted(held)), tuple(sorted(kept))


def label_set_sources(data_dir: Path, items: Items, data: Any) -> tuple[tuple, tuple[str, ...]]:
    """The decoder inputs of `items` (paths, or the texts of table rows) and their names."""
    base = tables_folder(data_dir)
    if not hasattr(data, "text_column"):
        from toolkit_deploy.pathtext import path_from_text

        paths = tuple(base / path_from_text(rel) for rel, _ in items)
        return paths, tuple(path_text(str(p)) for p in paths)
    tables: dict[str, list[labelsets.LabelSetRow]] = {}
    sources, names = [], []
    for rel, _ in items:
        name, _, row = rel.rpartition(":")
        if name not in tables:
            tables[name] = _rows(data_dir if data_dir.is_file() else base / name, data)
        sources.append(tables[name][int(row)].input)
        names.append(f"{base / name} row {int(row) + 1}")
    return tuple(sources), tuple(names)


def label_set_fingerprint(data_dir: Path, split: Any, digest: Any) -> str:
    """`data.fingerprint` of a multi-label split: its tables, items and the files they name."""
    from toolkit_deploy.files import hash_file
    from toolkit_deploy.pathtext import path_from_text

    tables = ([data_dir] if data_dir.is_file()
              else list(labelsets.find_table_splits(data_dir).values()))
    for table in tables:
        hash_file(digest, table)
    names = {t.name for t in tables}
    for name in ("train", "val", "test"):
        for rel, target in getattr(split, name):
            digest.update(f"{name}\0{rel}\0{target}\0".encode())
            if rel.rpartition(":")[0] not in names:  # a file, not a row of a table of texts
                hash_file(digest, tables_folder(data_dir) / path_from_text(rel))
    return digest.hexdigest()


def positive_weights(items: Items, n_classes: int) -> list[float]:
    """negatives / positives per label in `items` (1 for a label without positives): the BCE
    `pos_weight` of `train.class_weights = "balanced"`."""
    hot = np.asarray([t for _, t in items], np.float64).reshape(-1, n_classes)
    positives = hot.sum(0)
    return np.where(positives > 0, (len(hot) - positives) / np.maximum(positives, 1), 1.0).tolist()
