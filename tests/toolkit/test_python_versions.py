"""The Python versions the two distributions declare are the ones the code runs on, and CI tries
the runtime on each of them that the machine has (.ci/runtime-pythons)."""

from __future__ import annotations

import ast
import subprocess
import tomllib
import zipfile
from pathlib import Path

from tests.toolkit.conftest import Trained
from toolkit.packaging import package_model

ROOT = Path(__file__).resolve().parents[2]
PYPROJECTS = (ROOT / "pyproject.toml", ROOT / "deploy" / "pyproject.toml")


def project(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))["project"]


def classified(path: Path) -> list[tuple[int, int]]:
    prefix = "Programming Language :: Python :: "
    return sorted(tuple(map(int, c[len(prefix):].split("."))) for c in project(path)["classifiers"]
                  if c.startswith(prefix) and "." in c[len(prefix):])


def stdlib_imports(package: Path) -> set[str]:
    found = set()
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
    return found


def test_both_distributions_declare_the_pythons_the_code_needs() -> None:
    # tomllib is new in 3.11 and the training stack imports it; onnxruntime >= 1.24.3 (the
    # runtime's floor) has no 3.10 wheels. Neither distribution may promise 3.10.
    assert "tomllib" in stdlib_imports(ROOT / "toolkit")
    for path in PYPROJECTS:
        assert project(path)["requires-python"] == ">=3.11", path
        versions = classified(path)
        assert versions and versions[0] == (3, 11), path  # tested from the declared minimum
    assert classified(PYPROJECTS[0]) == classified(PYPROJECTS[1])


def test_a_model_package_declares_the_runtimes_pythons(trained: Trained, tmp_path: Path) -> None:
    built = package_model(trained.export.path, tmp_path / "dist", "shapes")

    def requires_python(wheel: Path) -> str:
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            lines = z.read(meta).decode().splitlines()
        return next(line for line in lines if line.startswith("Requires-Python: "))

    assert requires_python(built.model_wheel) == requires_python(built.runtime_wheel)


def test_ci_prints_a_skip_line_for_each_declared_python_that_is_absent(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()  # a pyenv holding no Python at all
    result = subprocess.run([str(ROOT / ".ci" / "runtime-pythons"), "3.11"], capture_output=True,
                            text=True, timeout=60, env={"PYENV_ROOT": str(tmp_path),
                                                        "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Python 3.11: the full runtime suite ran on it above"
    for version in ("3.12", "3.13"):
        assert (f"SKIP: Python {version} (declared in deploy/pyproject.toml) is not installed "
                f"under {tmp_path / 'versions'}") in lines
