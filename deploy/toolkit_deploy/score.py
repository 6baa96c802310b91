"""Batch scoring: a folder (or one file) in, one predictions table (CSV or JSONL) out."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from toolkit_deploy.files import list_files
from toolkit_deploy.pipeline import Prediction, predict_files
from toolkit_deploy.predictor import Predictor

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did.

    Attributes:
        n_files: Inputs found.
        n_scored: Inputs scored.
        n_failed: Inputs that became error rows.
        seconds: Wall time of the run (model loading excluded).
        output: The predictions table.
        ignored: Files under the input that were not inputs ('' if none).
        device: Device the model ran on.
    """

    n_files: int
    n_scored: int
    n_failed: int
    seconds: float
    output: str
    ignored: str
    device: str

    @property
    def files_per_second(self) -> float:
        return self.n_files / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files_per_second": self.files_per_second}

    def describe(self) -> str:
        text = (
            f"scored {self.n_scored}/{self.n_files} files, {self.n_failed} failed, in "
            f"{self.seconds:.2f} s ({self.files_per_second:.1f} files/s, {self.device}) "
            f"→ {self.output}"
        )
        return f"{text}\n{self.ignored}" if self.ignored else text


def columns(top_k: int) -> list[str]:
    """Columns of a predictions table with `top_k` extra label/score pairs."""
    extra = [c for k in range(1, top_k + 1) for c in (f"top{k}_label", f"top{k}_score")]
    return ["path", "label", "score", "error", *extra]


def prediction_row(
    prediction: Prediction, path: str, labels: tuple[str, ...], top_k: int
) -> dict[str, Any]:
    """One table row; an error row has empty label and score."""
    row: dict[str, Any] = dict.fromkeys(columns(top_k), "")
    row["path"] = path
    if prediction.probs is None:
        row["error"] = prediction.error
        return row
    probs = prediction.probs
    order = probs.argsort()[::-1]
    row["label"] = labels[order[0]]
    row["score"] = float(probs[order[0]])
    for k, i in enumerate(order[:top_k], start=1):
        row[f"top{k}_label"] = labels[i]
        row[f"top{k}_score"] = float(probs[i])
    return row


class _Writer:
    """Writes rows to `<out>.partial`, then moves it over `out` when the run completes, so an
    interrupted run never leaves a truncated table under the final name."""

    def __init__(self, out: Path, fields: list[str]) -> None:
        self.out = out
        self.fmt = FORMATS[out.suffix.lower()]
        self.tmp = out.with_name(out.name + ".partial")
        self.file: IO[str] = open(self.tmp, "w", newline="", encoding="utf-8")
        if self.fmt == "csv":
            self.csv = csv.DictWriter(self.file, fieldnames=fields, lineterminator="\n")
            self.csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        if self.fmt == "csv":
            self.csv.writerow(row)
        else:
            self.file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        self.file.close()


def score(
    model: Predictor | str | os.PathLike,
    inputs: str | os.PathLike,
    out: str | os.PathLike,
    *,
    top_k: int = 0,
    batch_size: int = 32,
    workers: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> ScoreSummary:
    """Score every input file under `inputs` and write one row per file to `out`.

    Files are found recursively and sorted; `path` in the table is relative to `inputs` when it is
    a folder. A file that cannot be decoded becomes a row with its `error`; the run goes on.

    Args:
        model: A `Predictor` or the path of a model file.
        inputs: A folder or a single file.
        out: `.csv` or `.jsonl` predictions table.
        top_k: Add the K most probable labels and their probabilities as columns.
        batch_size: Files per ONNX Runtime call.
        workers: Decoding threads (default: available cores).
        device: `cpu`, `cuda` or `auto` (when `model` is a path).
        threads: ONNX Runtime intra-op threads (when `model` is a path).
        overwrite: Replace an existing `out`.
        progress: Show a progress bar on stderr (when it is a terminal).

    Raises:
        FileExistsError: `out` exists and `overwrite` is False.
        ValueError: `out` has an unsupported extension or `top_k` is out of range.
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(
            f"Output {out} has an unsupported extension; expected one of {', '.join(FORMATS)}."
        )
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"Output {out} already exists; pass --overwrite (overwrite=True) to replace it, or "
            "choose another path."
        )
    if not out.parent.is_dir():
        raise FileNotFoundError(f"Output folder {out.parent} does not exist; create it first.")
    predictor = model if isinstance(model, Predictor) else Predictor(model, device, threads)
    if not 0 <= top_k <= len(predictor.labels):
        raise ValueError(f"top_k must be in [0, {len(predictor.labels)}]. Got {top_k}.")
    listing = list_files(inputs, predictor.decoder.extensions)

    from tqdm import tqdm

    started = time.perf_counter()
    writer = _Writer(out, columns(top_k))
    failed = 0
    try:
        stream = predict_files(predictor, listing.files, batch_size, workers)
        bar = tqdm(
            stream, total=len(listing.files), unit="file", desc="score", file=sys.stderr,
            disable=None if progress else True,
        )
        for prediction in bar:
            failed += prediction.probs is None
            rel = listing.relative(prediction.path)
            writer.write(prediction_row(prediction, rel, predictor.labels, top_k))
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return ScoreSummary(
        n_files=len(listing.files),
        n_scored=len(listing.files) - failed,
        n_failed=failed,
        seconds=time.perf_counter() - started,
        output=str(out),
        ignored=listing.describe_ignored(),
        device=predictor.device,
    )
