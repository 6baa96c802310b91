"""Killed at any point, resumed, the same table: `toolkit score` runs as a real process, is
stopped with SIGKILL at five points (then with SIGTERM and SIGINT), is resumed each time with
--resume on the same output, and ends with exactly the table an uninterrupted run writes: every
input once, in order, with the same values. Done for a folder of images and a table of texts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.builders import COLOURS, write_image
from tests.deploy.processes import toolkit
from toolkit_deploy.cli import EXIT_INTERRUPTED, EXIT_OK
from toolkit_deploy.score import score, summary_path
from toolkit_deploy.tablewriter import partial_paths

#: Inputs are sized from a measured rate so that one scoring pass takes about this long on any
#: machine: long enough for the two kill points that wait for a commit (at least a second
#: apart) and the interruptions, short enough for the suite.
PASS_SECONDS = 5.0
#: Options of every run: batches of 8 from one decoding thread, so rows come steadily.
OPTIONS = ("--batch-size", "8", "--workers", "1", "--top-k", "2", "--probs", "-q")


@dataclass(frozen=True)
class Table:
    """What a run has left on disk: its commit log's identity (each commit writes a new file),
    the rows and bytes it records as committed, and the bytes of the partial table."""

    log: tuple[int, int] | None
    rows: int
    committed: int
    written: int


def look(out: Path) -> Table:
    partial, log = partial_paths(out)
    try:
        status = log.stat()
        state = json.loads(log.read_text(encoding="utf-8"))
        written = partial.stat().st_size
    except (FileNotFoundError, json.JSONDecodeError):  # not yet there
        return Table(None, 0, 0, 0)
    return Table((status.st_ino, status.st_mtime_ns), state["rows"], state["bytes"], written)


Point = Callable[[Table, Table], bool]


def rows_past_a_commit(before: Table, now: Table) -> bool:
    """This run has reopened the table, and rows past its last commit reached the file."""
    return now.log not in (None, before.log) and now.written > now.committed


def reopened(before: Table, now: Table) -> bool:
    """This run has cut the table back to its last commit and recorded it: no new row yet, or
    only the first few."""
    return now.log not in (None, before.log)


def committed_new_rows(before: Table, now: Table) -> bool:
    """Right after this run's first commit of new rows."""
    return now.rows > before.rows


def mid_chunk(before: Table, now: Table) -> bool:
    """32 KiB past the last commit: in the middle of a chunk, a row likely cut in two."""
    return now.log not in (None, before.log) and now.written - now.committed >= 32 * 1024


#: The five SIGKILL points, in the order of the chain.
KILL_POINTS: list[Point] = [rows_past_a_commit, reopened, committed_new_rows, mid_chunk,
                            committed_new_rows]


def interrupt(command: list[str], out: Path, point: Point,
              sig: signal.Signals) -> tuple[int, Table, str]:
    """Run `command`, send `sig` as soon as `point` holds; its exit code, the table at the
    signal, and its stderr."""
    before = now = look(out)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    try:
        while process.poll() is None:
            now = look(out)
            if point(before, now):
                process.send_signal(sig)
                break
            time.sleep(0.005)
        try:
            _, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"still running 120 s after {sig.name}:\n{stderr}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, now, stderr


def row_ends(reference: bytes) -> list[int]:
    """Byte offsets of the table after its header (CSV) and after each row."""
    lines = reference.splitlines(keepends=True)
    ends, offset = [], 0
    if reference.startswith(b"path,"):  # the CSV header
        offset = len(lines.pop(0))
    ends.append(offset)
    for line in lines:
        offset += len(line)
        ends.append(offset)
    return ends


def check_committed(out: Path, reference: bytes, ends: list[int]) -> Table:
    """The committed part of the partial table is whole rows, and the reference's first ones."""
    table = look(out)
    assert table.committed == ends[table.rows], table
    assert partial_paths(out)[0].read_bytes()[: table.committed] == reference[: table.committed]
    return table


def kill_and_resume(command: list[str], out: Path, reference: Path) -> list[int]:
    """The chain: five SIGKILLs, a SIGTERM and a SIGINT, each followed by the same command
    with --resume; then one that finishes. Returns the rows committed at each stop."""
    expected = reference.read_bytes()
    ends = row_ends(expected)
    committed = []
    for number, point in enumerate(KILL_POINTS, start=1):
        resume = ["--resume"] if number > 1 else []
        code, _, stderr = interrupt([*command, *resume], out, point, signal.SIGKILL)
        assert code == -signal.SIGKILL, (
            f"kill point {number} ({point.__name__}) never came: exit {code}\n{stderr}")
        committed.append(check_committed(out, expected, ends).rows)
    for sig in (signal.SIGTERM, signal.SIGINT):
        code, at_signal, stderr = interrupt([*command, "--resume"], out, rows_past_a_commit, sig)
        assert code == EXIT_INTERRUPTED, (sig, code, stderr)
        assert "interrupted" in stderr and "--resume" in stderr
        table = check_committed(out, expected, ends)
        assert table.rows > at_signal.rows  # the rows written since the last commit were kept
        committed.append(table.rows)
    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True,
                              timeout=300)
    assert finished.returncode == EXIT_OK, finished.stderr
    assert out.read_bytes() == expected  # one row per input, in order, the same values
    assert not [p for p in out.parent.iterdir() if ".partial" in p.name]
    assert json.loads(summary_path(out).read_text())["resumed_after"] == committed[-1]
    return committed


def inputs_for(rate: float) -> int:
    return max(2000, round(rate * PASS_SECONDS))


def test_an_image_folder_killed_five_times_resumes_to_the_uninterrupted_table(
        colour_model: Path, tmp_path: Path) -> None:
    sources = [write_image(tmp_path / f"{label}.png", colour, (96, 96))
               for label, colour in COLOURS.items()]

    def folder(name: str, n: int) -> Path:
        root = tmp_path / name
        for i in range(n):  # hard links: real files, made in no time
            if i % 1000 == 0:
                (root / f"{i // 1000:02d}").mkdir(parents=True)
            os.link(sources[i % 3], root / f"{i // 1000:02d}" / f"{i:06d}.png")
        return root

    sample = score(colour_model, folder("calibration", 1000), tmp_path / "calibration.csv",
                   batch_size=8, workers=1, top_k=2, probs=True, progress=False)
    inputs = folder("in", inputs_for(sample.n_files / sample.seconds))
    reference = tmp_path / "reference.csv"
    score(colour_model, inputs, reference, batch_size=8, workers=1, top_k=2, probs=True,
          progress=False)

    out = tmp_path / "out" / "predictions.csv"
    out.parent.mkdir()
    committed = kill_and_resume(toolkit("score", colour_model, inputs, "--out", out, *OPTIONS),
                                out, reference)
    assert committed[2] > committed[1] and committed[4] > committed[3]  # commits of new rows


def test_a_text_table_killed_five_times_resumes_to_the_uninterrupted_table(
        keyword_model: Path, tmp_path: Path) -> None:
    texts = ["What a match!", "La pizza du café", "这家餐厅的美食", "球队 goal", "nothing at all"]

    def table(name: str, n: int) -> Path:
        path = tmp_path / f"{name}.csv"
        path.write_text("id,text\n" + "".join(f"c{i},{texts[i % 5]} {i}\n" for i in range(n)),
                        encoding="utf-8")
        return path

    sample = score(keyword_model, table("calibration", 20000), tmp_path / "calibration.jsonl",
                   batch_size=8, workers=1, top_k=2, probs=True, progress=False)
    inputs = table("in", inputs_for(sample.n_files / sample.seconds))
    reference = tmp_path / "reference.jsonl"
    score(keyword_model, inputs, reference, batch_size=8, workers=1, top_k=2, probs=True,
          progress=False)

    out = tmp_path / "out" / "predictions.jsonl"
    out.parent.mkdir()
    committed = kill_and_resume(toolkit("score", keyword_model, inputs, "--out", out, *OPTIONS),
                                out, reference)
    assert committed[2] > committed[1] and committed[4] > committed[3]

