"""Texts stored many to a file: lines of a `.txt`, rows of a `.csv` or objects of a `.jsonl`.

Scoring, evaluation and training read them here. A row that cannot be used (no text, bad JSON,
an empty line) keeps its place as a row with an error, so callers can report it; a file that
cannot be read at all (wrong encoding, no text column) is an error naming the fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from toolkit_deploy.decoders.text import decode_bytes
from toolkit_deploy.errors import DatasetError, DecodeError

#: Files read as one text per line (.txt) or per row (.csv, .jsonl).
EXTENSIONS = (".txt", ".csv", ".jsonl")


@dataclass(frozen=True)
class TextRow:
    """One text of a table.

    Attributes:
        id: The row's id column when the table has one, else its 1-based line number.
        text: The text, or None when the row is unusable.
        label: The row's label (labelled tables), else None.
        error: Why the row is unusable ('' when it is fine).
    """

    id: str
    text: str | None
    label: str | None = None
    error: str = ""


def read_table(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str | None = None,
    id_column: str | None = None,
    encoding: str | None = None,
) -> list[TextRow]:
    """Read the texts of a `.txt` (one per line), `.csv` or `.jsonl` file.

    Args:
        path: The file.
        text_column: Column (or JSON key) holding the text.
        label_column: Column holding the label, for labelled tables; rows without one are errors.
        id_column: Column holding the row id; default `id` when the table has it, else the
            1-based line number (for .csv, the data row number after the header).
        encoding: The file's encoding; default UTF-8 (with or without BOM).

    Raises:
        DatasetError: The file is not UTF-8 (or `encoding`), lacks a named column, or has an
            unsupported extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise DatasetError(
            f"{path}: a text table must be one of {', '.join(EXTENSIONS)}. Got {suffix!r}."
        )
    try:
        text = decode_bytes(path.read_bytes(), encoding, str(path))
    except DecodeError as e:
        raise DatasetError(str(e)) from e
    if suffix == ".txt":
        if label_column:
            raise DatasetError(f"{path}: a .txt file has one text per line and no labels; use a "
                               ".csv or .jsonl with a label column, or DIR/<class>/*.txt files.")
        return _lines(text)
    reader = _csv_rows if suffix == ".csv" else _jsonl_rows
    return reader(text, path, text_column, label_column, id_column)


def _lines(text: str) -> list[TextRow]:
    # Only \n (and \r\n) end a line; str.splitlines would also split on \x0b, \u2028, ...
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    rows = []
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        if line.strip():
            rows.append(TextRow(str(number), line))
        else:
            rows.append(TextRow(str(number), None, error="The line is empty."))
    return rows


def _check_columns(path: Path, found: list[str], text_column: str, label_column: str | None,
                   id_column: str | None) -> None:
    wanted = [("--text-column", text_column), ("--label-column", label_column),
              ("--id-column", id_column)]
    for option, column in wanted:
        if column and column not in found:
            raise DatasetError(
                f"{path} has no column {column!r}; its columns are {found}. Name the right one "
                f"with {option}."
            )


def _row(id_: str, record: dict, text_column: str, label_column: str | None) -> TextRow:
    text = record.get(text_column)
    label = record.get(label_column) if label_column else None
    if not isinstance(text, str) or not text.strip():
        return TextRow(id_, None, None, f"The row has no text in {text_column!r}.")
    if label_column and (label is None or str(label).strip() == ""):
        return TextRow(id_, None, None, f"The row has no label in {label_column!r}.")
    return TextRow(id_, text, str(label) if label_column else None)


def _csv_rows(text: str, path: Path, text_column: str, label_column: str | None,
              id_column: str | None) -> list[TextRow]:
    # The csv module refuses a field over 131,072 characters, which ends the reading of the whole
    # table; the field cannot be longer than the file, so that is the limit here, and a text too
    # long for the model is that row's error (the decoder's max_bytes), as in a .jsonl table.
    previous = csv.field_size_limit()
    csv.field_size_limit(max(len(text), previous))
    try:
        # strict: a quote that is never closed is an error at the end of the file, instead of
        # one field silently swallowing every row after it.
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        found = list(reader.fieldnames or [])
        _check_columns(path, found, text_column, label_column, id_column)
        id_column = id_column or ("id" if "id" in found else None)
        rows = []
        start = reader.line_num + 1  # the line the next record starts on
        try:
            for number, record in enumerate(reader, start=1):
                id_ = str(record[id_column]) if id_column and record[id_column] else str(number)
                rows.append(_row(id_, record, text_column, label_column))
                start = reader.line_num + 1
        except csv.Error as e:
            if "unexpected end of data" in str(e):
                raise DatasetError(
                    f"{path} is not a valid CSV file: the quote opened in the record starting on "
                    f"line {start} is never closed, so that field would swallow every line after "
                    'it, to the end of the file. Close the quote, or double a quote inside a '
                    'quoted field ("").') from e
            raise DatasetError(f"{path} is not a valid CSV file (line {reader.line_num}): "
                               f"{e}") from e
    finally:
        csv.field_size_limit(previous)
    return rows


def _jsonl_rows(text: str, path: Path, text_column: str, label_column: str | None,
                id_column: str | None) -> list[TextRow]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue  # blank lines separate nothing in JSON Lines; they are not records
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            rows.append(TextRow(str(number), None, None, f"Invalid JSON: {e}."))
            continue
        except RecursionError:
            rows.append(TextRow(str(number), None, None, "Invalid JSON: nested too deeply to "
                                                         "read (thousands of levels)."))
            continue
        if not isinstance(record, dict):
            rows.append(TextRow(str(number), None, None,
                                "The line is not a JSON object."))
            continue
        key = id_column or "id"
        id_ = str(record[key]) if record.get(key) not in (None, "") else str(number)
        if id_column and id_column not in record:
            rows.append(TextRow(str(number), None, None,
                                f"The object has no {id_column!r}."))
            continue
        rows.append(_row(id_, record, text_column, label_column))
    if not rows:
        raise DatasetError(f"{path} holds no JSON objects; expected one per line.")
    return rows
