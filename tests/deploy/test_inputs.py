"""What `score` reads: globs, manifests, and files that must never hang a run."""

from __future__ import annotations

import csv
import json
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


def test_a_carriage_return_in_a_path_label_or_id_stays_inside_its_csv_row(
        tmp_path: Path, keyword_model: Path) -> None:
    import onnx

    from tests.deploy.builders import colour_model_proto

    model = tmp_path / "cr.onnx"
    onnx.save(colour_model_proto(labels=("re\rd", "gr\r\neen", "blue")), model)
    folder = tmp_path / "in"
    write_image(folder / "a\rb.png", COLOURS["red"])
    write_image(folder / "ok.png", COLOURS["green"])
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["score", str(model), str(folder), "--out", str(out),
                                       "--probs", "-q"])
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert [(r["path"], r["label"]) for r in rows] == [("a\rb.png", "re\rd"),
                                                       ("ok.png", "gr\r\neen")]
    assert "prob_re\rd" in rows[0]
    # An id of a table of texts, too.
    table = tmp_path / "texts.csv"
    table.write_text('id,text\n"x\ry",goal match\nz,pizza\n', encoding="utf-8")
    out = tmp_path / "t.csv"
    result = CliRunner().invoke(main, ["score", str(keyword_model), str(table), "--out",
                                       str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert [(r["id"], r["label"]) for r in rows_of(out)] == [("x\ry", "sport"), ("z", "food")]


def deep_folder(root: Path, depth: int = 25) -> Path:
    """A folder whose path is past PATH_MAX (4096 bytes), with an image in it; made with paths
    relative to an open folder, which the kernel allows."""
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d" * 200, dir_fd=fd)
            below = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = below
        image = write_image(root / "deep.png", COLOURS["red"])
        data = image.read_bytes()
        image.unlink()
        out = os.open("lost.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, data)
        os.close(out)
    finally:
        os.close(fd)
    return root / "/".join(["d" * 200] * depth)


def test_folders_that_cannot_be_listed_are_error_rows(colour_model: Path,
                                                      tmp_path: Path) -> None:
    from tests.deploy.processes import obeying_permissions, require_permissions, run, toolkit

    require_permissions(tmp_path)
    folder = tmp_path / "in"
    write_image(folder / "ok.png", COLOURS["red"])
    write_image(folder / "locked" / "hidden_from_us.png", COLOURS["red"])
    deep = deep_folder(folder)
    (folder / "locked").chmod(0)
    try:
        out = tmp_path / "p.csv"
        result = run(toolkit("score", colour_model, folder, "--out", out, "-q"),
                     preexec_fn=obeying_permissions, timeout=60)
    finally:
        (folder / "locked").chmod(0o755)
    assert result.returncode == EXIT_PARTIAL, result.stderr
    assert "scored 1/3 inputs, 2 failed" in result.stderr
    rows = {r["path"]: r["error"] for r in rows_of(out)}
    assert rows["ok.png"] == ""
    assert "cannot be listed" in rows["locked"] and "Permission denied" in rows["locked"]
    past = [p for p in rows if p.startswith("d" * 200)]
    assert len(past) == 1 and "File name too long" in rows[past[0]], rows
    assert len(str(deep)) > 4096


def test_evaluate_counts_a_folder_that_cannot_be_listed_as_failed(
        colour_model: Path, colour_folder: Path) -> None:
    from toolkit_deploy.evaluate import evaluate

    deep_folder(colour_folder / "red")
    result = evaluate(colour_model, colour_folder)
    assert result["n_samples"] == 9 and result["n_failed"] == 1
    assert "cannot be listed" in result["errors"][0]["error"]


def test_a_csv_field_over_131072_characters_is_one_row_as_in_jsonl(keyword_model: Path,
                                                                  tmp_path: Path) -> None:
    long, too_long = "pizza " * 30000, "goal " * 2_000_001  # 180 KB; over the 10 MB cap
    rows = [("a", "goal match"), ("b", long), ("c", too_long), ("d", "pizza")]
    csv_table, jsonl_table = tmp_path / "texts.csv", tmp_path / "texts.jsonl"
    csv_table.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in rows), encoding="utf-8")
    jsonl_table.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows),
                           encoding="utf-8")
    results = {}
    for table in (csv_table, jsonl_table):
        out = tmp_path / f"{table.suffix[1:]}.csv"
        result = CliRunner().invoke(main, ["score", str(keyword_model), str(table), "--out",
                                           str(out), "-q"])
        assert result.exit_code == EXIT_PARTIAL, result.output
        assert "scored 3/4 inputs, 1 failed" in result.output
        results[table.suffix] = [(r["id"], r["label"], r["error"]) for r in rows_of(out)]
    assert results[".csv"] == results[".jsonl"]
    assert [label for _, label, _ in results[".csv"]] == ["sport", "food", "", "food"]
    assert "over the limit" in results[".csv"][2][2]
