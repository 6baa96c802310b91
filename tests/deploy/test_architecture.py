"""The runtime's architecture, read from its source: it never imports the training stack (what it
needs of it is reached through entry points, `toolkit_deploy.plugins`) and its modules import
each other without circles (`tests/deploy/importgraph.py` says what counts as an import)."""

from __future__ import annotations

from pathlib import Path

from tests.deploy import importgraph


def runtime_modules() -> dict[str, Path]:
    import toolkit_deploy

    return importgraph.modules(Path(toolkit_deploy.__file__).parent, "toolkit_deploy")


def test_no_runtime_module_imports_the_training_stack() -> None:
    offenders = [
        f"{imp.path}:{imp.line} imports {imp.target}"
        for name, path in runtime_modules().items() for imp in importgraph.imports(name, path)
        if imp.target.split(".")[0] in ("toolkit", "torch")
    ]
    assert offenders == []


def test_the_runtime_has_no_import_circle() -> None:
    cycle = importgraph.find_cycle(importgraph.graph(runtime_modules()))
    assert cycle == [], importgraph.describe(cycle)


def test_the_check_finds_a_lazy_circle_and_ignores_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from pkg import d\n")
    (package / "d.py").write_text("import pkg.c\n")
    cycle = importgraph.find_cycle(importgraph.graph(importgraph.modules(package, "pkg")))
    assert [imp.source for imp in cycle] == ["pkg.a", "pkg.b"]
    assert "pkg.a (a.py:1) -> pkg.b (b.py:2) -> pkg.a" in importgraph.describe(cycle)
    (package / "b.py").write_text("def thing():\n    pass\n")
    assert importgraph.find_cycle(importgraph.graph(importgraph.modules(package, "pkg"))) == []
