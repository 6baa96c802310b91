"""File names that are not UTF-8 (POSIX names are bytes) are scored and evaluated, and written in
the tables, summaries and reports in their quoted form, which gives the exact bytes back."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.deploy.builders import COLOURS, write_image
from tests.deploy.processes import run, toolkit
from toolkit_deploy.cli import EXIT_OK
from toolkit_deploy.pathtext import path_from_text, path_text

BAD = os.fsdecode(b"bad\xffname.png")  # a Latin-1 tool's name: the byte 0xff is not UTF-8


@pytest.mark.parametrize(("name", "text"), [
    ("plain.png", "plain.png"), ("café/照片.png", "café/照片.png"), ('a"b.png', 'a"b.png'),
    ("back\\slash.png", "back\\slash.png"), ("a\rb.png", "a\rb.png"),  # UTF-8: as it is
    ('"quoted".png', '"\\"quoted\\".png"'), ('"', '"\\""'), ('""', '"\\"\\""'),
    (BAD, '"bad\\xffname.png"'),
    (os.fsdecode(b'\xe9t\xe9/\\x41\xff"q".png'), '"\\xe9t\\xe9/\\\\x41\\xff\\"q\\".png"'),
    ("lone\ud800surrogate", '"lone\\ud800surrogate"')])
def test_every_name_round_trips_through_text(name: str, text: str) -> None:
    assert path_text(name) == text
    text.encode("utf-8")  # always UTF-8 text
    assert path_from_text(text) == name


def test_the_quoted_form_of_a_name_that_is_not_utf8() -> None:
    assert path_text(BAD) == '"bad\\xffname.png"'
    assert os.fsencode(path_from_text('"bad\\xffname.png"')) == b"bad\xffname.png"


def write_badly_named(folder: Path, colour: str) -> Path:
    good = write_image(folder / "x.png", COLOURS[colour])
    bad = folder / BAD
    os.rename(good, bad)
    return bad


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:  # strict UTF-8: the table is text
        return list(csv.DictReader(f))


def test_score_writes_a_name_that_is_not_utf8_reversibly(colour_model: Path,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_image(folder / "ok.png", COLOURS["red"])
    write_badly_named(folder, "blue")
    for out in (tmp_path / "p.csv", tmp_path / "p.jsonl"):
        result = run(toolkit("score", colour_model, folder, "--out", out, "-q"), timeout=60)
        assert result.returncode == EXIT_OK, result.stderr
        rows = csv_rows(out) if out.suffix == ".csv" else [
            json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert [(r["path"], r["label"]) for r in rows] == [
            ('"bad\\xffname.png"', "blue"), ("ok.png", "red")]
        assert os.fsencode(path_from_text(rows[0]["path"])) == b"bad\xffname.png"
        summary = json.loads(Path(f"{out}.summary.json").read_text(encoding="utf-8"))
        assert summary["n_files"] == 2
    # The table's paths, given back as a manifest (beside the files), name the same files.
    (folder / "list.csv").write_bytes((tmp_path / "p.csv").read_bytes())
    again = run(toolkit("score", colour_model, folder / "list.csv", "--manifest", "--out",
                        tmp_path / "again.csv", "-q"), timeout=60)
    assert again.returncode == EXIT_OK, again.stderr
    assert [(r["path"], r["label"]) for r in csv_rows(tmp_path / "again.csv")] == [
        ('"bad\\xffname.png"', "blue"), ("ok.png", "red")]


def test_evaluate_and_its_report_name_a_file_that_is_not_utf8(colour_model: Path,
                                                              colour_folder: Path,
                                                              tmp_path: Path) -> None:
    write_badly_named(colour_folder / "red", "blue")  # a blue image in red/: misclassified
    result = run(toolkit("evaluate", colour_model, "--data", colour_folder, "--json",
                         "--report", tmp_path / "report"), timeout=60)
    assert result.returncode == EXIT_OK, result.stderr
    figures = json.loads(result.stdout)
    assert figures["n_samples"] == 10 and figures["n_failed"] == 0
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "&quot;red/bad\\xffname.png&quot;" in page  # the worst misclassified input
