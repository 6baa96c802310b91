"""What `score` reads: globs, manifests, and files that must never hang a run."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.score import Selection, score


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_include_and_exclude_globs(colour_model: Path, colour_folder: Path,
                                   tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder), "--out",
                                       str(out), "--include", "*.png", "--exclude", "*/deeper/*",
                                       "-q"])
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in rows_of(out)] == ["blue/blue_a.png", "green/green_a.png",
                                                 "red/red_a.png"]
    assert "3 --exclude" in result.output and "3 not --include" in result.output


def test_a_manifest_lists_the_files(colour_model: Path, colour_folder: Path,
                                    tmp_path: Path) -> None:
    listing = colour_folder / "list.txt"
    listing.write_text("red/red_a.png\nblue/deeper/blue_c.png\nmissing.png\n\n", encoding="utf-8")
    summary = score(colour_model, listing, tmp_path / "a.csv", progress=False,
                    selection=Selection(manifest=True))
    rows = rows_of(tmp_path / "a.csv")
    assert [(r["path"], r["label"]) for r in rows] == [
        ("red/red_a.png", "red"), ("blue/deeper/blue_c.png", "blue"), ("missing.png", ""), ("", "")]
    assert "File not found" in rows[2]["error"] and "empty" in rows[3]["error"]
    assert summary.n_failed == 2
    table = colour_folder / "list.csv"
    table.write_text("file,note\ngreen/green_b.jpg,x\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(colour_model), str(table), "--manifest",
                                       "--path-column", "file", "--out", str(tmp_path / "b.csv"),
                                       "-q"])
    assert result.exit_code == 0, result.output
    assert rows_of(tmp_path / "b.csv")[0]["label"] == "green"


def test_fifos_sockets_and_symlink_loops_are_error_rows_not_hangs(
        colour_model: Path, tmp_path: Path) -> None:
    import socket

    folder = tmp_path / "in"
    write_image(folder / "ok.png", COLOURS["red"])
    os.mkfifo(folder / "fifo.png")  # opening it for reading would block forever
    os.symlink(folder / "loop_b.png", folder / "loop_a.png")
    os.symlink(folder / "loop_a.png", folder / "loop_b.png")
    os.symlink(folder / "ok.png", folder / "link.png")  # a good symlink is scored
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "sock.png"))
    try:
        out = tmp_path / "p.csv"
        result = CliRunner().invoke(main, ["score", str(colour_model), str(folder), "--out",
                                           str(out), "-q"])
    finally:
        server.close()
    assert result.exit_code == EXIT_PARTIAL, result.output
    rows = {r["path"]: r for r in rows_of(out)}
    assert rows["ok.png"]["label"] == rows["link.png"]["label"] == "red"
    assert "not a regular file" in rows["fifo.png"]["error"]
    assert "not a regular file" in rows["sock.png"]["error"]
    assert rows["loop_a.png"]["error"] and rows["loop_b.png"]["error"]
