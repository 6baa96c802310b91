"""A runtime installed without the extras a command needs says what to install, in one line, and
leaves nothing behind: `pip install ./deploy` alone (no ONNX Runtime extra), then with `[cpu]` but
without Ray for `--engine ray`. Real installs into a fresh virtual environment (pip's cache makes
them quick after the first run)."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import onnx
import pytest

from tests.deploy.builders import COLOURS, colour_model_proto, write_image

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=cwd, env=clean)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with `pip install ./deploy` only: no ONNX Runtime."""
    where = tmp_path_factory.mktemp("bare")
    venv.EnvBuilder(with_pip=True).create(where / "env")
    pip = [str(where / "env" / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check"]
    installed = run([*pip, str(ROOT / "deploy")], where)
    assert installed.returncode == 0, installed.stderr
    assert run([str(where / "env" / "bin" / "python"), "-c", "import onnxruntime"],
               where).returncode != 0
    onnx.save(colour_model_proto(), where / "colour.onnx")
    for label, colour in COLOURS.items():
        write_image(where / "in" / f"{label}.png", colour)
    return where


@pytest.mark.slow
def test_without_onnxruntime_score_prints_only_the_message(bare: Path) -> None:
    toolkit = str(bare / "env" / "bin" / "toolkit")
    result = run([toolkit, "score", "colour.onnx", "in", "--out", "p.csv"], bare)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: toolkit-deploy needs ONNX Runtime: pip install 'toolkit-deploy[cpu]', or "
        "'toolkit-deploy[gpu]' for CUDA (onnxruntime-gpu; never both)."]
    assert not list(bare.glob("p.csv*"))
    inspect = run([toolkit, "inspect", "colour.onnx"], bare)
    assert inspect.returncode == 1 and "Traceback" not in inspect.stderr


@pytest.mark.slow
def test_engine_ray_without_ray_is_one_line_and_leaves_no_partial_table(bare: Path) -> None:
    python = str(bare / "env" / "bin" / "python")
    installed = run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                     f"{ROOT / 'deploy'}[cpu]"], bare)
    assert installed.returncode == 0, installed.stderr
    toolkit = str(bare / "env" / "bin" / "toolkit")
    result = run([toolkit, "score", "colour.onnx", "in", "--out", "p.csv", "--engine", "ray"],
                 bare)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("Error: --engine ray needs Ray Data: pip install "
                                     "'toolkit-deploy[ray]'")
    assert not list(bare.glob("p.csv*"))  # no .partial that would block the next run
    again = run([toolkit, "score", "colour.onnx", "in", "--out", "p.csv", "-q"], bare)
    assert again.returncode == 0, again.stderr
