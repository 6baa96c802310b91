"""`toolkit package`: standard wheels, exact dependencies, and a real install without torch."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from tests.deploy.builders import keyword_model_proto
from tests.toolkit.conftest import Trained
from toolkit.packaging import package_model
from toolkit_deploy.cli import main


def wheel_files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


def test_wheels_are_standard_and_depend_on_exactly_what_the_model_needs(
        trained: Trained, tmp_path: Path) -> None:
    built = package_model(trained.export.path, tmp_path / "dist", "shapes", version="2.0.1")
    assert built.model_wheel.name == "shapes-2.0.1-py3-none-any.whl"
    assert built.runtime_wheel.name == "toolkit_deploy-0.1.0-py3-none-any.whl"
    for wheel in (built.model_wheel, built.runtime_wheel):
        files = wheel_files(wheel)
        record = next(n for n in files if n.endswith(".dist-info/RECORD"))
        for line in files[record].decode().splitlines():  # every file hashed as PEP 376 says
            name, digest, size = line.rsplit(",", 2)
            if name == record:
                continue
            expected = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(files[name])
    files = wheel_files(built.model_wheel)
    assert files["shapes/model.onnx"] == trained.export.path.read_bytes()
    meta = files["shapes-2.0.1.dist-info/METADATA"].decode()
    assert [line for line in meta.splitlines() if line.startswith("Requires-Dist")] == [
        "Requires-Dist: toolkit-deploy[cpu]==0.1.0"]  # no tokenizers, soundfile, PyAV, torch
    for needle in ("circle, cross, square, star, triangle", "parity with PyTorch | passed",
                   "held-out figures | test split", "shapes score INPUT"):
        assert needle in meta
    assert "shapes = shapes.cli:main" in files["shapes-2.0.1.dist-info/entry_points.txt"].decode()
    runtime = wheel_files(built.runtime_wheel)
    assert "toolkit_deploy/packaged.py" in runtime
    assert not any("test" in name.split("/")[0] for name in runtime)

    text_model = tmp_path / "text.onnx"
    onnx.save(keyword_model_proto(), text_model)
    gpu = package_model(text_model, tmp_path / "gpu", "topics", gpu=True)
    assert gpu.requires == ("toolkit-deploy[gpu,text]==0.1.0",)
    init = wheel_files(gpu.model_wheel)["topics/__init__.py"].decode()
    assert 'DEVICE = "cuda"' in init


def test_bad_names_are_refused(trained: Trained, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["package", str(trained.export.path), "--out",
                                       str(tmp_path), "--name", "My-Model"])
    assert result.exit_code == 1 and "lower-case letters and digits" in result.output
    with pytest.raises(ValueError, match="taken by the toolkit's runtime"):
        package_model(trained.export.path, tmp_path, "toolkit")


@pytest.mark.parametrize("name", ["json", "os", "numpy", "site", "sitecustomize", "click",
                                  "tqdm", "onnxruntime", "pil", "av", "toolkit-deploy",
                                  "onnxruntime-gpu", "typing", "asyncio"])
def test_names_that_shadow_the_stdlib_or_the_runtime_are_refused(trained: Trained,
                                                                  tmp_path: Path,
                                                                  name: str) -> None:
    result = CliRunner().invoke(main, ["package", str(trained.export.path), "--out",
                                       str(tmp_path / "dist"), "--name", name])
    assert result.exit_code == 1, result.output
    assert "shadow" in result.output and "Choose another" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "dist").exists()


def test_an_over_long_name_or_version_is_a_clear_error(trained: Trained, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["package", str(trained.export.path), "--out",
                                       str(tmp_path / "dist"), "--name", "a" * 300])
    assert result.exit_code == 1
    assert "--name is 300 characters long; at most 64" in result.output
    assert not isinstance(result.exception, OSError)
    with pytest.raises(ValueError, match="at most 32 characters"):
        package_model(trained.export.path, tmp_path / "dist", "ok", version="1" * 300)
    assert not (tmp_path / "dist").exists()


def test_a_hyphenated_name_is_the_distribution_and_command_its_import_has_underscores(
        trained: Trained, tmp_path: Path) -> None:
    built = package_model(trained.export.path, tmp_path / "dist", "digits-clf")
    assert built.model_wheel.name == "digits_clf-0.1.0-py3-none-any.whl"  # PEP 427 escaping
    files = wheel_files(built.model_wheel)
    meta = files["digits_clf-0.1.0.dist-info/METADATA"].decode()
    assert "Name: digits-clf" in meta.splitlines()
    assert "import digits_clf" in meta and "digits-clf score INPUT" in meta
    assert files["digits_clf-0.1.0.dist-info/entry_points.txt"].decode() == (
        "[console_scripts]\ndigits-clf = digits_clf.cli:main\n")
    assert "from digits_clf import" in files["digits_clf/cli.py"].decode()
    compile(files["digits_clf/__init__.py"], "digits_clf/__init__.py", "exec")


def run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run outside the repository (so that `python -c` cannot import its source tree)."""
    return subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def test_real_install_without_torch_scores_like_toolkit(trained: Trained, tmp_path: Path) -> None:
    """Build the wheels, install them with pip into a fresh environment, score a folder with the
    installed command and compare every row with `toolkit score`."""
    dist = tmp_path / "dist"
    result = CliRunner().invoke(main, ["package", str(trained.export.path), "--out", str(dist),
                                       "--name", "shapes-model"])
    assert result.exit_code == 0, result.output
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python, command = env_dir / "bin" / "python", env_dir / "bin" / "shapes-model"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = {"cwd": tmp_path, "env": clean}
    install = run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--find-links", str(dist), "shapes-model"], **where)
    assert install.returncode == 0, install.stderr
    assert run([str(python), "-c", "import torch"], **where).returncode != 0
    assert run([str(python), "-c", "import toolkit"], **where).returncode != 0

    ours = run([str(command), "score", str(trained.data), "--out", str(tmp_path / "a.csv"),
                "--top-k", "2", "-q"], **where)
    assert ours.returncode == 0, ours.stderr
    theirs = CliRunner().invoke(main, ["score", str(trained.export.path), str(trained.data),
                                       "--out", str(tmp_path / "b.csv"), "--top-k", "2", "-q"])
    assert theirs.exit_code == 0, theirs.output
    with open(tmp_path / "a.csv", newline="") as a, open(tmp_path / "b.csv", newline="") as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(rows_a) == 5 * 24 and rows_a == rows_b

    loaded = run([str(python), "-c", "import shapes_model, sys; p = shapes_model.load(); "
                  "print(p.labels); print(sorted(m for m in sys.modules if m == 'torch'))"],
                 **where)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == [str(trained.run.labels), "[]"]
    info = run([str(command), "info"], **where)
    assert info.returncode == 0 and "(ok)" in info.stdout and "circle" in info.stdout

    installed = run([str(python), "-c", "import shapes_model; print(shapes_model.model_path())"],
                    **where).stdout.strip()
    with open(installed, "ab") as f:  # tamper with the installed model
        f.write(b"\0")
    refused = run([str(command), "score", str(trained.data), "--out", str(tmp_path / "c.csv")],
                  **where)
    assert refused.returncode == 1 and "was modified after packaging" in refused.stderr
    assert not (tmp_path / "c.csv").exists()
    assert sys.executable != str(python)
