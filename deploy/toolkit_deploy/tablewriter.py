"""Writing a predictions table so that nothing is lost: rows go to `<out>.partial`, committed in
chunks (at least 256 rows and a second apart: flushed to disk, then `<out>.partial.json` records
how many rows and bytes are safe and the run's fingerprint); the finished table is renamed to
`out`. A run killed at any point can be resumed: the partial file is cut back to its last commit
and the run goes on from the next row, with no duplicate and no gap. Parquet tables are written
in row groups and cannot be resumed.

An earlier table at `out` is replaced only by the rename of a complete one, so a run that fails
(a full disk, a kill) leaves it as it was. Failing writes raise `OutputError`, saying where, why,
and what was kept. The side files are never written through a link planted at their names
(`writing.create_side_file`).

Cells are UTF-8 text: a value that is not (a file name holding bytes that are not UTF-8) is
written in its quoted form (`pathtext`). A CSV cell holding a line break of any kind, a bare
carriage return included, is quoted, so that every row stays one record.
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
from toolkit_deploy.files import sha256_of
from toolkit_deploy.pathtext import path_text
from toolkit_deploy.writing import (
    create_side_file,
    open_side_file,
    output_error,
    output_errors,
    write_side_text,
)

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
        inputs: How many rows the finished table will have (a commit log that records more is
            refused as altered).

    Attributes:
        done: Rows already in the table (committed by the interrupted run when resuming).
        sha256: The finished table's sha256, once committed.

    Raises:
        OutputError: The partial table cannot be created (a folder that is not writable, a link
            planted at its name, ...).
        ValueError: The partial table to resume was written by another run, or it or its commit
            log was altered.
    """

    def __init__(self, out: Path, fields: list[str], fingerprint: str, resume: bool,
                 inputs: int) -> None:
        self.out, self.fields, self.fingerprint, self.inputs = out, fields, fingerprint, inputs
        self.sha256 = ""
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
            self.file: BinaryIO = create_side_file(self.tmp, out)
            with self._disk():
                self.parquet = _ParquetRows(self.file, fields)
            return
        self._line = io.StringIO()  # one CSV row at a time, to know its bytes
        # The csv module quotes a cell holding a character of the line terminator, and only
        # those: with "\n" a bare "\r" goes out unquoted and readers split the row there. The
        # rows are written with "\r\n" so that both are quoted, then end in "\n" (`_row_text`).
        self.csv = csv.DictWriter(self._line, fieldnames=fields, lineterminator="\r\n")
        if resume:
            state = self._state()
            self._logged = True
            self.file = open_side_file(self.tmp, out)
            with self._disk():
                # Drop the rows written after the last commit.
                os.ftruncate(self.file.fileno(), state["bytes"])
            self.done = state["rows"]
            self._mark = (state["rows"], state["failed"], state["bytes"])
        else:
            self.file = create_side_file(self.tmp, out)
            if self.fmt == "csv":
                self.csv.writeheader()
                self._append(self._row_text().encode("utf-8"), 0, 0)
        try:
            self._commit_point()
        except BaseException:
            self.file.close()
            if not resume:  # nothing of this run was committed: leave nothing behind
                self.tmp.unlink(missing_ok=True)
            raise

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
        altered = (f"it cannot be continued. Start again with --overwrite (or without --resume "
                   f"after removing {self.tmp} and {self.log}).")
        try:
            state = json.loads(self.log.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.log} is not the commit log a run writes ({e}), so "
                             f"{altered}") from e
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint \
                or state.get("fields") != self.fields:
            raise ValueError(
                f"{self.tmp} was written with another model, other inputs or other options than "
                "this run's (or an input file changed since), so it cannot be continued. Run "
                "with the same ones, or start again with --overwrite.")
        counts = [state.get(k) for k in ("rows", "failed", "bytes")]
        if not all(type(c) is int and c >= 0 for c in counts) or counts[1] > counts[0] \
                or counts[0] > self.inputs:
            raise ValueError(
                f"{self.log} records {state.get('rows')!r} committed rows, {state.get('failed')!r}"
                f" of them errors, in {state.get('bytes')!r} bytes; this run has {self.inputs} "
                f"inputs, so the log was altered and {altered}")
        size = self.tmp.stat().st_size
        if size < state["bytes"]:
            raise ValueError(
                f"{self.tmp} is shorter ({size} bytes) than its last commit "
                f"({state['bytes']} bytes): it was cut or altered, so {altered}")
        found = self._records(state["bytes"])
        if found != state["rows"]:
            raise ValueError(
                f"{self.log} records {state['rows']} committed rows, but the first "
                f"{state['bytes']} bytes of {self.tmp} hold {found}: one of them was altered, so "
                f"{altered}")
        return state

    def _records(self, size: int) -> int:
        """Rows in the first `size` bytes of the partial table (the CSV header not counted)."""
        with open(self.tmp, "rb") as f:
            data = f.read(size)
        if self.fmt == "jsonl":
            return data.count(b"\n")
        text = data.decode("utf-8", errors="replace")
        previous = csv.field_size_limit(max(len(text), 131072))
        try:
            return max(0, sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1)
        except csv.Error:
            return -1
        finally:
            csv.field_size_limit(previous)

    def _row_text(self) -> str:
        text = self._line.getvalue()
        self._line.seek(0)
        self._line.truncate()
        return text[:-2] + "\n"  # "\r\n" ends a row only for the quoting (see __init__)

    def _render(self, row: dict[str, Any]) -> str:
        if self.fmt == "csv":
            self.csv.writerow(row)
            return self._row_text()
        return json.dumps(row, ensure_ascii=False) + "\n"

    def _append(self, data: bytes, rows: int, failed: int) -> None:
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
        try:
            data = self._render(row).encode("utf-8")
        except UnicodeEncodeError:  # a cell that is not text: a file name that is not UTF-8
            data = self._render({k: path_text(v) if isinstance(v, str) else v
                                 for k, v in row.items()}).encode("utf-8")
        self._append(data, 1, int(failed))
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
            write_side_text(tmp, self.out, json.dumps(state), self._kept())
            with self._disk(tmp):
                os.replace(tmp, self.log)
            self._logged = True
        finally:
            if not tmp.is_symlink():  # a planted link is refused, and left for the user to see
                tmp.unlink(missing_ok=True)

    def finish(self) -> None:
        """Every row is written: make the table durable and closed, and take its `sha256`.

        Raises:
            OutputError: The last rows cannot be made durable; the table stays resumable.
        """
        if self.fmt == "parquet":
            try:
                with self._disk():
                    self.parquet.close()
                    self.file.close()
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
        with self._disk():
            self.sha256 = sha256_of(self.tmp)

    def commit(self) -> None:
        """The table is complete: move it to `out` (only now is an earlier table there replaced).

        Raises:
            OutputError: The last rows cannot be made durable, or the table cannot be moved;
                the table stays resumable.
        """
        if not self.sha256:
            self.finish()
        with self._disk(self.out):
            os.replace(self.tmp, self.out)
        self.log.unlink(missing_ok=True)

    def abort(self) -> None:
        """Interrupted, or a write failed: keep the rows written, resumable. Never raises: when
        they cannot be made durable (a full disk), the last commit stands and the rows after it
        are scored again on --resume. A Parquet table, unreadable until complete, is removed."""
        if self.fmt == "parquet":
            if not self.file.closed:
                with contextlib.suppress(Exception):  # whatever pyarrow raises on a broken file
                    self.parquet.close()
                with contextlib.suppress(OSError):
                    self.file.close()
            self.tmp.unlink(missing_ok=True)
            return
        if self.file.closed:
            return  # finished (every row committed) or aborted already
        with contextlib.suppress(OutputError):
            self._commit_point()
        with contextlib.suppress(OSError):
            self.file.close()


class _ParquetRows:
    """Rows to a Parquet file in row groups (the `parquet` extra: pyarrow). Scores are float64,
    the rest strings; an error row's label and scores are null."""

    def __init__(self, file: BinaryIO, fields: list[str]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as e:
            raise ImportError("Parquet output needs pyarrow: pip install "
                              "'toolkit-deploy[parquet]', or write .csv / .jsonl.") from e
        self.pa, self.fields, self.rows = pa, fields, []
        self.schema = pa.schema([(f, pa.float64() if _is_number(f) else pa.string())
                                 for f in fields])
        self.writer = pq.ParquetWriter(file, self.schema)

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
