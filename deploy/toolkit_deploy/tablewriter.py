"""Writing a predictions table so that nothing is lost: rows go to `<out>.partial`, committed in
chunks (at least 256 rows and a second apart: flushed to disk, then `<out>.partial.json` records
how many rows and bytes are safe and the run's fingerprint); the finished table is renamed to
`out`. A run killed at any point can be resumed: the partial file is cut back to its last commit
and the run goes on from the next row, with no duplicate and no gap. Parquet tables are written
in row groups and cannot be resumed.

An earlier table at `out` is replaced only by the rename of a complete one, so a run that fails
(a full disk, a kill) leaves it as it was. Failing writes raise `OutputError`, saying where, why,
and what was kept.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from toolkit_deploy.errors import OutputError
from toolkit_deploy.writing import output_error, output_errors

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

    Raises:
        OutputError: The partial table cannot be created (a folder that is not writable, ...).
    """

    def __init__(self, out: Path, fields: list[str], fingerprint: str, resume: bool) -> None:
        self.out, self.fields, self.fingerprint = out, fields, fingerprint
        self.fmt = FORMATS[out.suffix.lower()]
        self.tmp, self.log = partial_paths(out)
        self.done = 0
        #: (rows, error rows, bytes) written so far. It is updated after each row's bytes are
        #: handed to the file, in one assignment, so that wherever an interrupt lands it
        #: describes whole rows only: a commit records it, and a resume cuts the file back to it.
        self._mark = (0, 0, 0)
        self._pending = 0
        self._last = time.monotonic()
        self._logged = False  # whether the log holds a commit of this run's table
        if self.fmt == "parquet":
            if resume:
                raise ValueError("A Parquet table cannot be resumed (it is only readable once "
                                 "complete); score to .csv or .jsonl to resume, or start again "
                                 "with --overwrite.")
            with self._disk():
                self.parquet = _ParquetRows(self.tmp, fields)
            return
        self._line = io.StringIO()  # one CSV row at a time, to know its bytes
        self.csv = csv.DictWriter(self._line, fieldnames=fields, lineterminator="\n")
        if resume:
            state = self._state()
            self._logged = True
            with self._disk():
                os.truncate(self.tmp, state["bytes"])  # drop rows written after the last commit
                self.file: BinaryIO = open(self.tmp, "ab")
            self.done = state["rows"]
            self._mark = (state["rows"], state["failed"], state["bytes"])
        else:
            with self._disk():
                self.file = open(self.tmp, "wb")
            if self.fmt == "csv":
                self.csv.writeheader()
                self._append(self._row_text(), 0, 0)
        self._commit_point()

    @property
    def failed(self) -> int:
        """Error rows in the table so far."""
        return self._mark[1]

    def _kept(self) -> str:
        if not self._logged:
            return ""
        return (f"the rows committed so far are kept in {self.tmp}: once it can be written, run "
                "the same command with --resume to finish it")

    def _disk(self, path: Path | None = None) -> contextlib.AbstractContextManager:
        return output_errors(path or self.tmp, self.out, self._kept())

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
        if self.tmp.stat().st_size < state["bytes"]:
            raise ValueError(
                f"{self.tmp} is shorter ({self.tmp.stat().st_size} bytes) than its last commit "
                f"({state['bytes']} bytes): it was cut or altered, so it cannot be continued. "
                "Start again with --overwrite.")
        return state

    def _row_text(self) -> str:
        text = self._line.getvalue()
        self._line.seek(0)
        self._line.truncate()
        return text

    def _append(self, text: str, rows: int, failed: int) -> None:
        data = text.encode("utf-8")
        try:  # not `with self._disk()`: this runs for every row
            self.file.write(data)
        except OSError as e:
            raise output_error(e, self.tmp, self.out, self._kept()) from e
        done, errors, size = self._mark
        self._mark = (done + rows, errors + failed, size + len(data))

    def write(self, row: dict[str, Any], failed: bool) -> None:
        """Add a row (`failed`: it is an error row); commit when a chunk is due.

        Raises:
            OutputError: The row cannot be written (a full disk, ...).
        """
        if self.fmt == "parquet":
            with self._disk():
                self.parquet.write(row)
            done, errors, _ = self._mark
            self._mark = (done + 1, errors + failed, 0)
            return  # row groups are the writer's business
        if self.fmt == "csv":
            self.csv.writerow(row)
            text = self._row_text()
        else:
            text = json.dumps(row, ensure_ascii=False) + "\n"
        self._append(text, 1, int(failed))
        self._pending += 1
        if self._pending >= CHUNK and time.monotonic() - self._last >= COMMIT_SECONDS:
            self._commit_point()

    def _commit_point(self) -> None:
        """Make the rows written so far durable, then record them."""
        rows, failed, size = self._mark
        with self._disk():
            self.file.flush()
            os.fsync(self.file.fileno())
        self._pending = 0
        self._last = time.monotonic()
        state = {"fingerprint": self.fingerprint, "fields": self.fields, "rows": rows,
                 "failed": failed, "bytes": size}
        tmp = self.log.with_name(self.log.name + ".tmp")
        try:
            with self._disk(tmp):
                tmp.write_text(json.dumps(state), encoding="utf-8")
                os.replace(tmp, self.log)
            self._logged = True
        finally:
            tmp.unlink(missing_ok=True)

    def commit(self) -> None:
        """The table is complete: move it to `out` (only now is an earlier table there replaced).

        Raises:
            OutputError: The last rows cannot be made durable; the table stays resumable.
        """
        if self.fmt == "parquet":
            try:
                with self._disk():
                    self.parquet.close()
            except BaseException:
                self.tmp.unlink(missing_ok=True)
                raise
        else:
            try:
                self._commit_point()
            except BaseException:
                self.abort()
                raise
            self.file.close()
        with self._disk(self.out):
            os.replace(self.tmp, self.out)
        self.log.unlink(missing_ok=True)

    def abort(self) -> None:
        """Interrupted, or a write failed: keep the rows written, resumable. Never raises: when
        they cannot be made durable (a full disk), the last commit stands and the rows after it
        are scored again on --resume. A Parquet table, unreadable until complete, is removed."""
        if self.fmt == "parquet":
            with contextlib.suppress(Exception):  # whatever pyarrow raises on a broken file
                self.parquet.close()
            self.tmp.unlink(missing_ok=True)
            return
        with contextlib.suppress(OutputError):
            self._commit_point()
        with contextlib.suppress(OSError):
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
