"""Run-folder plots with matplotlib, and one clear line without it."""

from __future__ import annotations

import subprocess
import sys

from PIL import Image

from tests.toolkit.conftest import Trained


def test_a_run_folder_gets_its_plots(trained: Trained) -> None:
    plots = trained.run.path / "plots"
    curves, confusion = Image.open(plots / "curves.png"), Image.open(plots / "confusion.png")
    assert curves.format == confusion.format == "PNG"
    assert curves.size == (1000, 400) and min(confusion.size) >= 400
    assert len(curves.convert("RGB").getcolors(maxcolors=10**6)) > 50  # drawn, not blank


def test_without_matplotlib_one_line_says_how_to_get_plots(trained: Trained) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"  # as if it were not installed
            "from toolkit.plots import write_run_plots\n"
            f"assert write_run_plots({str(trained.run.path)!r}) == []\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'toolkit[plots]'" in lines[0]
