"""One run at a time per output: a run that writes OUT holds an exclusive lock on `OUT.lock`
beside it (flock(2), released by the kernel when the process ends, however it ends), so a second
run on the same OUT is refused at once instead of interleaving its rows with the first one's.

The lock file is removed by its holder on the way out; a run killed with SIGKILL leaves it, which
is harmless: nobody holds the lock of a dead process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from toolkit_deploy.errors import OutputInUseError
from toolkit_deploy.writing import check_side_file, output_errors

_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def lock_path(out: Path) -> Path:
    """The lock file of a run writing `out`."""
    return out.with_name(out.name + ".lock")


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock of the first byte does the same
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_at(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        here = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the lock of `out` for the block.

    Raises:
        OutputInUseError: Another run holds it.
        OutputError: The lock file cannot be created (a folder that is not writable, a link
            planted at its name).
    """
    path = lock_path(out)
    while True:
        check_side_file(path, out)
        with output_errors(path, out):
            fd = os.open(path, _FLAGS, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            raise OutputInUseError(
                f"Another run is writing {out}: it holds {path}. Wait for it to finish (or stop "
                "it), or choose another --out; two runs on one table would mix their rows.")
        # The run before us removes the lock file as it ends; if it did so after we opened it,
        # we hold the lock of a file nobody else can see, so take the one at the path again.
        if _is_at(fd, path):
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still held, so that no other run locks the removed file
        os.close(fd)
