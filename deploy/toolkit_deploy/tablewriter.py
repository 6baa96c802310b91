"""Writing a predictions table so that nothing is lost: rows go to `<out>.partial`, committed in
chunks (at least 256 rows and a second apart: flushed to disk, then `<out>.partial.json` records
how many rows and bytes are safe and the run's fingerprint); the finished table is renamed to
`out`. A run killed at any point can be resumed: the partial file is cut back to its last commit
and the run goes on from the next row, with no duplicate and no gap. Parquet tables are written
in row groups and cannot be resumed.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import IO, Any

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
#: Rows between commits (and Parquet row groups)...
CHUNK = 256
#: ... and at least this many seconds: each commit is an fsync, which cost 20 % of the text
#: scoring rate when done every 256 rows of short texts (benchmarks/README.md).
COMMIT_SECONDS = 1.0


def _is_number(column: str) -> bool:
    return column == "score" or column.endswith("_score") or column.startswith("prob_")


def partial_paths(out: Path) -> tuple[Path, Path]:
    """The partial table and its commit log."""
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


class TableWriter:
    """Rows of one predictions table, committed every `CHUNK` rows.

    Args:
        out: The final table (`.csv`, `.jsonl`, `.parquet`).
        fields: Its columns.
        fingerprint: What the rows depend on (model, inputs, options); a resume must match it.
        resume: Continue the partial table an interrupted run left.

    Attributes:
        done: Rows already in the table (committed by the interrupted run when resuming).
        failed: Error rows among them.
    """

    def __init__(self, out: Path, fields: list[str], fingerprint: str, resume: bool) -> None:
        self.out, self.fields, self.fingerprint = out, fields, fingerprint
        self.fmt = FORMATS[out.suffix.lower()]
        self.tmp, self.log = partial_paths(out)
        self.done = self.failed = 0
        self._pending = 0
        self._last = time.monotonic()
        if self.fmt == "parquet":
            if resume:
                raise ValueError("A Parquet table cannot be resumed (it is only readable once "
                                 "complete); score to .csv or .jsonl to resume, or start again "
                                 "with --overwrite.")
            self.parquet = _ParquetRows(self.tmp, fields)
            return
        if resume:
            state = self._state()
            os.truncate(self.tmp, state["bytes"])  # drop rows written after the last commit
            self.done, self.failed = state["rows"], state["failed"]
            self.file: IO[str] = open(self.tmp, "a", newline="", encoding="utf-8")
        else:
            self.file = open(self.tmp, "w", newline="", encoding="utf-8")
        if self.fmt == "csv":
            self.csv = csv.DictWriter(self.file, fieldnames=fields, lineterminator="\n")
            if not resume:
                self.csv.writeheader()
        self._commit_point()

    def _state(self) -> dict[str, Any]:
        if not (self.log.is_file() and self.tmp.is_file()):
            raise FileNotFoundError(
                f"Nothing to resume: {self.tmp} and {self.log} (left by an interrupted run) are "
                f"not both there. Score without --resume.")
        state = json.loads(self.log.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint or state.get("fields") != self.fields:
            raise ValueError(
                f"{self.tmp} was written with another model, other inputs or other options than "
                "this run's, so it cannot be continued. Run with the same ones, or start again "
                "with --overwrite.")
        return state

    def write(self, row: dict[str, Any], failed: bool) -> None:
        if self.fmt == "parquet":
            self.parquet.write(row)
        elif self.fmt == "csv":
            self.csv.writerow(row)
        else:
            self.file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._pending += 1
        self.failed += failed
        if self.fmt == "parquet":
            return  # row groups are the writer's business
        if self._pending >= CHUNK and time.monotonic() - self._last >= COMMIT_SECONDS:
            self._commit_point()

    def _commit_point(self) -> None:
        """Make the rows so far durable and record them."""
        self.done += self._pending
        self._pending = 0
        if self.fmt == "parquet":
            return
        self.file.flush()
        os.fsync(self.file.fileno())
        self._last = time.monotonic()
        state = {"fingerprint": self.fingerprint, "fields": self.fields, "rows": self.done,
                 "failed": self.failed, "bytes": self.file.tell()}
        tmp = self.log.with_name(self.log.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.log)

    def commit(self) -> None:
        """The table is complete: move it to `out`."""
        if self.fmt == "parquet":
            self.parquet.close()
        else:
            self._commit_point()
            self.file.close()
        os.replace(self.tmp, self.out)
        self.log.unlink(missing_ok=True)

    def abort(self) -> None:
        """Interrupted: keep what was fully written, resumable (not for Parquet)."""
        if self.fmt == "parquet":
            self.parquet.close()
            return
        self._commit_point()
        self.file.close()


class _ParquetRows:
    """Rows to a Parquet file in row groups (the `parquet` extra: pyarrow). Scores are float64,
    the rest strings; an error row's label and scores are null."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError("Parquet output needs pyarrow: pip install "
                              "'toolkit-deploy[parquet]', or write .csv / .jsonl.") from e
        self.pa, self.fields, self.rows = pa, fields, []
        self.schema = pa.schema([(f, pa.float64() if _is_number(f) else pa.string())
                                 for f in fields])
        self.writer = pq.ParquetWriter(path, self.schema)

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            data = {f: [None if r[f] == "" and (f == "label" or _is_number(f)) else r[f]
                        for r in self.rows] for f in self.fields}
            self.writer.write_table(self.pa.table(data, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
