"""Versions of the packages a corpus is built from, for its manifest (same versions, same files)."""

from __future__ import annotations

import importlib.metadata
import subprocess


def debian_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each Debian package in `packages` (as `dpkg-query` reports it)."""
    versions = {}
    for package in packages:
        query = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                               capture_output=True, text=True, check=True)
        versions[package] = query.stdout.strip()
    return versions


def python_versions(distributions: tuple[str, ...]) -> dict[str, str]:
    """The installed version of each PyPI distribution, keyed `pypi:<name>` to tell them apart."""
    return {f"pypi:{name}": importlib.metadata.version(name) for name in distributions}
