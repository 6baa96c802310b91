"""Versions of the PyPI distributions and codec libraries a corpus is built from, for its
manifest (same versions, same files); Debian packages by name: `corpora.debian.versions`."""

from __future__ import annotations

import importlib.metadata
import subprocess


def python_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each PyPI distribution, keyed `pypi:<name>` to tell them apart."""
    return {f"pypi:{name}": importlib.metadata.version(name) for name in distributions}


def debian_versions_matching(patterns: tuple[str, ...]) -> dict[str, str]:
    """Versions of the installed Debian packages whose names match `patterns` (dpkg globs such as
    `libx264-*`): the codec libraries behind FFmpeg, whose package names change by release."""
    query = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n",
                            *patterns], capture_output=True, text=True)
    rows = [line.split() for line in query.stdout.splitlines()]
    return {row[0]: row[1] for row in sorted(rows) if len(row) == 3 and row[2] == "ii"}
