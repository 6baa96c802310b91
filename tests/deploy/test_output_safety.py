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
    for words in (f"Cannot write {out}.partial", "Permission denied", f"{folder} is not "
                  "writable here: choose a folder you can write to with --out",
                  f"{out} was not replaced"):
        assert words in failed.stderr, (words, failed.stderr)
    assert sorted(folder.iterdir()) == sorted(earlier)  # nothing new in it
    assert {path: path.read_bytes() for path in earlier} == earlier
