"""The project's architecture, read from its source: no import circle among the modules of
`toolkit` and `toolkit_deploy` together (blocks below, drivers on top; lazy imports count,
`tests/deploy/importgraph.py` says what counts), and the entry points the runtime reaches the
training stack by name real functions."""

from __future__ import annotations

import tomllib
from importlib import import_module
from pathlib import Path

import pytest

import toolkit
import toolkit_deploy
from tests.deploy import importgraph
from toolkit_deploy import plugins

ROOT = Path(toolkit.__file__).parent.parent


def project_modules() -> dict[str, Path]:
    return {**importgraph.modules(Path(toolkit.__file__).parent, "toolkit"),
            **importgraph.modules(Path(toolkit_deploy.__file__).parent, "toolkit_deploy")}


def test_no_import_circle_among_the_projects_modules() -> None:
    cycle = importgraph.find_cycle(importgraph.graph(project_modules()))
    assert cycle == [], importgraph.describe(cycle)


def entry_points() -> dict[str, dict[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["entry-points"]


@pytest.mark.parametrize(("group", "name"), [
    (group, name) for group in (plugins.COMMANDS, plugins.RUN_FOLDERS)
    for name in entry_points()[group]])
def test_every_entry_point_names_a_real_object(group: str, name: str) -> None:
    module, _, attribute = entry_points()[group][name].partition(":")
    assert callable(getattr(import_module(module), attribute))


def test_the_runtime_finds_what_it_needs_of_run_folders() -> None:
    assert set(entry_points()[plugins.RUN_FOLDERS]) == {"evaluate", "figures"}
