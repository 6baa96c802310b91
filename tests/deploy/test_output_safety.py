"""Outputs that cannot be written: a full disk (a file size limit) and a folder that is not
writable fail with a message saying what, where and how to fix it, exit with 1 (fatal), and leave
an earlier table at the output path as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from tests.deploy.processes import (
    file_size_limit,
    obeying_permissions,
    require_permissions,
    run,
    toolkit,
)
from toolkit_deploy.cli import EXIT_FATAL, EXIT_OK, main
from toolkit_deploy.score import score, summary_path
from toolkit_deploy.tablewriter import partial_paths

#: Bytes any file the scoring process writes may grow to: a "disk" that fills up after a few
#: dozen rows (300 rows take about 70 KB as CSV or JSONL, 8 KB as Parquet).
LIMITS = {".csv": 16 * 1024, ".jsonl": 16 * 1024, ".parquet": 4 * 1024}
OPTIONS = ("--top-k", "3", "--probs", "--batch-size", "8", "-q")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """300 images (hard links to three), in folders of 100."""
    sources = [write_image(tmp_path / f"{label}.png", colour)
               for label, colour in COLOURS.items()]
    root = tmp_path / "images"
    for i in range(300):
        (root / f"{i // 100}").mkdir(parents=True, exist_ok=True)
        os.link(sources[i % 3], root / f"{i // 100}" / f"{i:03d}.png")
    return root


def earlier_run(model: Path, images: Path, out: Path) -> dict[Path, bytes]:
    """A finished run's table and summary at `out`, byte for byte."""
    score(model, images, out, top_k=3, probs=True, progress=False)
    return {path: path.read_bytes() for path in (out, summary_path(out))}


@pytest.mark.parametrize("suffix", LIMITS)
def test_a_full_disk_is_a_clear_fatal_error_and_the_earlier_table_stays(
        colour_model: Path, images: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / "out" / f"predictions{suffix}"
    out.parent.mkdir()
    earlier = earlier_run(colour_model, images, out)
    assert out.stat().st_size > LIMITS[suffix]  # the new table cannot fit
    command = toolkit("score", colour_model, images, "--out", out, *OPTIONS)

    refused = CliRunner().invoke(main, command[command.index("score"):])
    assert refused.exit_code == EXIT_FATAL and "already exists; pass --overwrite" in refused.output

    failed = run([*command, "--overwrite"], preexec_fn=file_size_limit(LIMITS[suffix]))
    assert failed.returncode == EXIT_FATAL, failed.stderr
    assert "Traceback" not in failed.stderr
    for words in (f"Cannot write {out}.partial", "File too large", "the disk is full or a file "
                  "size limit was reached", "write elsewhere with --out", f"{out} was not "
                  "replaced"):
        assert words in failed.stderr, (words, failed.stderr)
    assert {path: path.read_bytes() for path in earlier} == earlier  # untouched
    leftovers = sorted(p.name for p in out.parent.iterdir() if p not in earlier)
    if suffix == ".parquet":  # unreadable until complete, so not kept
        assert leftovers == []
        return
    # What was committed before the disk filled is kept, and the same command with --resume,
    # once there is room, finishes the table: the one an unhindered run writes.
    assert "run the same command with --resume" in failed.stderr
    assert leftovers == [p.name for p in partial_paths(out)]
    resumed = run([*command, "--overwrite", "--resume"])
    assert resumed.returncode == EXIT_OK, resumed.stderr
    assert out.read_bytes() == earlier[out]
    assert sorted(out.parent.iterdir()) == sorted(earlier)


def test_an_unwritable_folder_is_a_clear_fatal_error_and_the_earlier_table_stays(
        colour_model: Path, images: Path, tmp_path: Path) -> None:
    require_permissions(tmp_path)
    folder = tmp_path / "read-only"
    folder.mkdir()
    out = folder / "predictions.csv"
    earlier = earlier_run(colour_model, images, out)
    folder.chmod(0o555)
    try:
        failed = run(toolkit("score", colour_model, images, "--out", out, "--overwrite",
                             *OPTIONS), preexec_fn=obeying_permissions)
    finally:
        folder.chmod(0o755)
    assert failed.returncode == EXIT_FATAL, failed.stderr
    assert "Traceback" not in failed.stderr
    # The first file a run creates beside OUT is its lock (`locking`).
    for words in (f"Cannot write {out}.lock", "Permission denied", f"{folder} is not "
                  "writable here: choose a folder you can write to with --out",
                  f"{out} was not replaced"):
        assert words in failed.stderr, (words, failed.stderr)
    assert sorted(folder.iterdir()) == sorted(earlier)  # nothing new in it
    assert {path: path.read_bytes() for path in earlier} == earlier


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(
        colour_model: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import time

    from toolkit_deploy.cli import EXIT_INTERRUPTED
    from toolkit_deploy.locking import lock_path, output_lock

    source = write_image(tmp_path / "red.png", COLOURS["red"], (64, 64))
    inputs = tmp_path / "many"
    for i in range(20000):  # hard links: minutes of scoring one at a time, made in no time
        if i % 1000 == 0:
            (inputs / f"{i // 1000:02d}").mkdir(parents=True)
        os.link(source, inputs / f"{i // 1000:02d}" / f"{i:05d}.png")
    out = tmp_path / "p.csv"
    command = toolkit("score", colour_model, inputs, "--out", out, "--batch-size", "1",
                      "--workers", "1", "-q")
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not partial_paths(out)[0].exists() and first.poll() is None:
            assert time.monotonic() < deadline, "the first run never started writing"
            time.sleep(0.01)
        second = run([*command, "--overwrite"], timeout=60)
        still_running = first.poll() is None
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert still_running
    assert second.returncode == EXIT_FATAL, second.stderr
    assert f"Another run is writing {out}: it holds {out}.lock" in second.stderr
    assert "interrupted run" not in second.stderr
    assert first.returncode == EXIT_INTERRUPTED, stderr
    assert not lock_path(out).exists()  # released and removed as the first run ended
    with output_lock(out):  # free again: a third run takes it at once
        assert lock_path(out).exists()


@pytest.mark.parametrize("side", [".partial.json.tmp", ".summary.json.partial", ".partial"])
def test_a_link_planted_at_a_side_file_is_refused_and_its_target_untouched(
        colour_model: Path, images: Path, tmp_path: Path, side: str) -> None:
    out = tmp_path / "p.csv"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    link = out.with_name(out.name + side)
    link.symlink_to(victim)
    dangling = tmp_path / "never-made.txt"
    options = ("--overwrite",) if side == ".partial" else ()
    failed = run(toolkit("score", colour_model, images, "--out", out, *options, "-q"),
                 timeout=60)
    assert failed.returncode == EXIT_FATAL, failed.stderr
    assert "Traceback" not in failed.stderr
    assert f"{link} is a symbolic link" in failed.stderr and "never through a link" in failed.stderr
    assert victim.read_text(encoding="utf-8") == "precious" and link.is_symlink()
    assert not out.exists()
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(out.name))
    if side == ".summary.json.partial":  # the finished rows are kept, resumable
        assert kept == sorted([link.name, *(p.name for p in partial_paths(out))])
        for path in partial_paths(out):
            path.unlink()
    else:
        assert kept == [link.name]
    # A dangling link is refused too, and nothing is created where it points.
    link.unlink()
    link.symlink_to(dangling)
    failed = run(toolkit("score", colour_model, images, "--out", out, *options, "-q"),
                 timeout=60)
    assert failed.returncode == EXIT_FATAL, failed.stderr
    assert f"{link} is a symbolic link" in failed.stderr
    assert not dangling.exists() and link.is_symlink()
