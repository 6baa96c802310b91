"""The `toolkit` command in a subprocess, run the ways users meet trouble: as a process that file
permissions apply to, and under a file size limit (a full disk).

Tests run as root here, and root reads a chmod 000 file and writes into a chmod 555 folder. Root
obeys permissions once it lacks the capabilities that override them; dropping them from the
bounding set before `exec` (the command and its children then never have them) keeps uid 0, so
the command can still run this interpreter, which may live where only root can read.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

#: prctl(2) option, and the capabilities that let root ignore file permissions.
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2
# Resolved here, not between fork and exec, where loading a library could deadlock.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def toolkit(*args: object) -> list[str]:
    """The command line of `toolkit ARGS`: the console script installed beside this Python."""
    script = Path(sys.executable).with_name("toolkit")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from toolkit_deploy.cli import main; main()"]
    return [*command, *map(str, args)]


def obeying_permissions() -> None:
    """A `preexec_fn`: the command obeys file permissions, even when started by root."""
    if os.geteuid() != 0:
        return
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if _prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def file_size_limit(limit: int, obey_permissions: bool = False) -> Callable[[], None]:
    """A `preexec_fn`: no file the command writes may grow past `limit` bytes (RLIMIT_FSIZE).
    A write beyond fails with EFBIG, as one on a full disk fails with ENOSPC (Python ignores the
    SIGXFSZ that would otherwise kill it)."""

    def apply() -> None:
        if obey_permissions:
            obeying_permissions()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def require_permissions(folder: Path) -> None:
    """Skip the test, saying why, when a subprocess cannot be made to obey file permissions."""
    probe = folder / ".unreadable-probe"
    probe.write_text("secret")
    probe.chmod(0)
    try:
        result = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}).read()"],
                                preexec_fn=obeying_permissions, capture_output=True, text=True,
                                timeout=60)
    except subprocess.SubprocessError as e:  # prctl refused (no CAP_SETPCAP in this container)
        pytest.skip(f"cannot drop root's file-permission override in a subprocess here: {e}")
    finally:
        probe.unlink()
    if "PermissionError" not in result.stderr:
        pytest.skip("a subprocess reads a chmod 000 file here even without root's override "
                    "capabilities; permission errors cannot be provoked")


def run(command: list[str], preexec_fn: Callable[[], None] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `command` to its end (at most `timeout` seconds: no test may hang), capturing output."""
    return subprocess.run(command, preexec_fn=preexec_fn, capture_output=True, text=True,
                          timeout=timeout)
