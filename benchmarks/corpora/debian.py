"""What dpkg knows about installed files: which Debian package owns a path, and at which version.

The corpora record the packages (and versions) their samples come from, so a corpus can be
rebuilt, and its content explained, from its `corpus.json` alone.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

DPKG_INFO = Path("/var/lib/dpkg/info")


def file_owners(prefix: str) -> dict[str, str]:
    """Installed path (starting with `prefix`) → the Debian package that ships it.

    Reads dpkg's file lists directly: one `dpkg -S` per file would take minutes for thousands of
    files. Architecture qualifiers (`libxt-dev:amd64`) are dropped from the package names.
    """
    owners: dict[str, str] = {}
    for listing in sorted(DPKG_INFO.glob("*.list")):
        package = listing.name.removesuffix(".list").split(":")[0]
        for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(prefix):
                owners.setdefault(line, package)
    return owners


def versions(packages: set[str] | list[str] | tuple[str, ...]) -> dict[str, str]:
    """Debian package → installed version, sorted by package name."""
    names = sorted(set(packages))
    if not names:
        return {}
    shown = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\n", *names],
                           capture_output=True, text=True, check=False).stdout
    found = dict(line.split(" ", 1) for line in shown.splitlines() if " " in line)
    return {name: found[name] for name in names if name in found}
