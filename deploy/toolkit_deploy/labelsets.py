"""Multi-label data and decisions: tables of files (or texts) with a set of labels each, the
per-label decision thresholds, and the label set they pick from sigmoid probabilities.

A multi-label table is a `.csv` or `.jsonl` file with an input column (`path` for images, audio
and video, relative to the table's folder; the text column for text) and a `labels` column. In a
CSV the labels are joined by `SEPARATOR` (`cat|dog`); in JSON Lines they are a list (`["cat",
"dog"]`; a string is split on `SEPARATOR` too). An empty cell or list is the empty label set (none
of the classes). Training, evaluation and scoring all read and write label sets this way.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit_deploy.decoders.text import decode_bytes
from toolkit_deploy.errors import DatasetError, DecodeError
from toolkit_deploy.names import LABEL_SEPARATOR

#: Joins the labels of one row in a CSV table and in the `labels` column of `toolkit score`.
SEPARATOR = LABEL_SEPARATOR
#: Column (JSON key) holding a row's label set.
LABELS_COLUMN = "labels"
#: Column (JSON key) holding a row's file, relative to the table's folder (non-text modalities).
PATH_COLUMN = "path"
#: Tables a multi-label dataset may be: `.csv` or `.jsonl`.
EXTENSIONS = (".csv", ".jsonl")
#: `train.threshold` values besides a number: one threshold per label, or one for all labels,
#: each chosen on the validation split to maximise F1.
THRESHOLD_MODES = ("per_label", "global")
#: The threshold of a label the validation split cannot tune (no positive sample there).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelSetRow:
    """One row of a multi-label table.

    Attributes:
        id: The 1-based data row number.
        input: The path (absolute) or text, or None when the row is unusable.
        labels: The row's labels (possibly none).
        error: Why the row is unusable ('' when it is fine).
    """

    id: str
    input: str | None
    labels: tuple[str, ...]
    error: str = ""


def split_labels(value: object) -> tuple[str, ...]:
    """A labels cell as a tuple of labels: a JSON list, or a string joined by `SEPARATOR`."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(dict.fromkeys(str(v).strip() for v in value if str(v).strip()))
    return tuple(dict.fromkeys(p.strip() for p in str(value).split(SEPARATOR) if p.strip()))


def join_labels(labels: Sequence[str]) -> str:
    """The label set as the text of a `labels` cell."""
    return SEPARATOR.join(labels)


def read_label_table(path: str | os.PathLike, input_column: str,
                     labels_column: str = LABELS_COLUMN, encoding: str | None = None,
                     relative_paths: bool = True) -> list[LabelSetRow]:
    """Read a multi-label table.

    Args:
        path: The `.csv` or `.jsonl` file.
        input_column: Column holding the file path (or text).
        labels_column: Column holding the label set.
        encoding: The table's encoding (default UTF-8, with or without BOM).
        relative_paths: `input_column` holds paths, resolved against the table's folder.

    Raises:
        DatasetError: Wrong extension or encoding, or a named column is missing.
    """
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS:
        raise DatasetError(f"{path}: a multi-label table must be one of {', '.join(EXTENSIONS)}."
                           f" Got {path.suffix!r}.")
    try:
        text = decode_bytes(path.read_bytes(), encoding, str(path))
    except DecodeError as e:
        raise DatasetError(str(e)) from e
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        found = list(reader.fieldnames or [])
        for column in (input_column, labels_column):
            if column not in found:
                raise DatasetError(f"{path} has no column {column!r}; its columns are {found}. "
                                   f"A multi-label table needs {input_column!r} and "
                                   f"{labels_column!r} (labels joined by {SEPARATOR!r}).")
        records = list(enumerate(reader, start=1))
    else:
        records = []
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path} line {number} is not valid JSON: {e}.") from e
                if not isinstance(record, dict):
                    raise DatasetError(f"{path} line {number} is not a JSON object.")
                for column in (input_column, labels_column):
                    if column not in record:
                        raise DatasetError(
                            f"{path} line {number} has no key {column!r}; its keys are "
                            f"{sorted(record)}. A multi-label table needs {input_column!r} and "
                            f"{labels_column!r} (a JSON list of labels).")
                records.append((number, record))
    rows = []
    for number, record in records:
        value = record.get(input_column)
        labels = split_labels(record.get(labels_column))
        if not isinstance(value, str) or not value.strip():
            rows.append(LabelSetRow(str(number), None, labels,
                                    f"The row has no {input_column!r}."))
            continue
        if relative_paths:
            value = str(path.parent / value)
        rows.append(LabelSetRow(str(number), value, labels))
    if not rows:
        raise DatasetError(f"{path} has no rows.")
    return rows


def find_table_splits(folder: str | os.PathLike) -> dict[str, Path]:
    """`train`, `val`, `test` tables (`.csv` or `.jsonl`) of a folder, or {} without train."""
    folder = Path(folder)
    found = {}
    for split in ("train", "val", "test"):
        for ext in EXTENSIONS:
            if (folder / f"{split}{ext}").is_file():
                found[split] = folder / f"{split}{ext}"
    return found if "train" in found else {}


def check_known(labels: Sequence[str], rows: Sequence[LabelSetRow], where: str,
                what: str = "the training split") -> None:
    """A label of `rows` that is not in `labels` is an error naming it.

    Raises:
        DatasetError: Some row has a label outside `labels`.
    """
    unknown = sorted({x for r in rows for x in r.labels} - set(labels))
    if unknown:
        raise DatasetError(f"{where} has labels {unknown[:10]} that are not in {what} "
                           f"({list(labels)[:20]}). Every label must be seen in training; add "
                           "training rows with it, or remove it.")


def multi_hot(labels: Sequence[str], sets: Sequence[Sequence[str]]) -> np.ndarray:
    """N × len(labels) bool matrix: row i marks the labels of `sets[i]`."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(sets), len(labels)), bool)
    for row, chosen in enumerate(sets):
        for label in chosen:
            out[row, index[label]] = True
    return out


def decide(probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """The labels each row keeps: probability >= its label's threshold (N × classes bool)."""
    return np.asarray(probs) >= np.asarray(thresholds, dtype=np.float64)[None, :]


def label_set(probs: np.ndarray, thresholds: Sequence[float],
              labels: Sequence[str]) -> tuple[str, ...]:
    """The labels one sample's probabilities keep, in the model's label order."""
    keep = decide(np.asarray(probs)[None, :], thresholds)[0]
    return tuple(label for label, k in zip(labels, keep, strict=True) if k)


def tune_thresholds(probs: np.ndarray, truth: np.ndarray, mode: str | float) -> list[float]:
    """Decision thresholds chosen on validation probabilities.

    Args:
        probs: N × classes sigmoid probabilities of the validation split.
        truth: N × classes bool targets.
        mode: `per_label` (each label's threshold maximises its F1), `global` (one threshold
            maximising micro F1), or a number used for every label.

    Candidate thresholds are the midpoints between sorted distinct probabilities (the F1 of any
    threshold equals one of theirs); ties go to the threshold nearest 0.5. A label without a
    positive validation sample keeps `DEFAULT_THRESHOLD`.
    """
    n = probs.shape[1] if probs.ndim == 2 else 0
    if not isinstance(mode, str):
        return [float(mode)] * n
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"Unknown threshold mode {mode!r}; valid: {THRESHOLD_MODES} or a "
                         "number in (0, 1).")
    if len(probs) == 0:
        return [DEFAULT_THRESHOLD] * n

    def best(p: np.ndarray, t: np.ndarray) -> float:
        values = np.unique(p)
        candidates = np.concatenate([(values[:-1] + values[1:]) / 2, [DEFAULT_THRESHOLD]])
        order = np.argsort(p, kind="stable")
        ascending, positives = p[order], np.concatenate([[0], np.cumsum(t[order])])
        below = np.searchsorted(ascending, candidates, side="left")  # rows under each threshold
        predicted = len(p) - below
        tp = positives[-1] - positives[below]
        denominator = positives[-1] + predicted
        scores = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
        ties = candidates[scores >= scores.max() - 1e-12]
        return float(ties[np.argmin(np.abs(ties - DEFAULT_THRESHOLD))])

    if mode == "global":
        return [best(probs.ravel(), truth.ravel())] * n
    return [best(probs[:, j], truth[:, j]) if truth[:, j].any() else DEFAULT_THRESHOLD
            for j in range(n)]
