"""Spreadsheet-safe CSV cells (`toolkit score --csv-safe`).

A spreadsheet (Excel, LibreOffice, Google Sheets) opening a CSV file runs a cell that starts
with `=`, `+`, `-` or `@` as a formula, and tab or carriage return can hide such a start: a
file named `=HYPERLINK("http://evil",…).png`, a text id or a label in the model file can then
make a predictions table run a formula ("CSV injection", OWASP). `--csv-safe` prefixes such
cells, and such column names (`prob_<label>`), with a single quote, which spreadsheets show as
text; the table is then no longer the raw values, so it is opt-in: a CSV read by programs
(pandas, csv) wants the raw values, and JSONL and Parquet need no escaping.
"""

from __future__ import annotations

from typing import Any

#: First characters a spreadsheet may read as the start of a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """`value` with a leading `'` when it is a string a spreadsheet would run as a formula;
    numbers and other strings unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe_row(row: dict[str, Any]) -> dict[str, Any]:
    """Every key and value of a table row through `csv_safe`."""
    return {csv_safe(k): csv_safe(v) for k, v in row.items()}
