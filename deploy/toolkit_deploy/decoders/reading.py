"""Turning the ways reading a file can fail into `DecodeError`s that say what to do, and opening
input files so that no open or read can block forever."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from toolkit_deploy.errors import DecodeError


@contextlib.contextmanager
def reading(path: Path, kind: str) -> Iterator[None]:
    """Re-raise OS errors met while reading `path` (a `kind` file, e.g. "image") as DecodeError."""
    try:
        yield
    except FileNotFoundError as e:
        raise DecodeError(f"File not found: {path}.") from e
    except PermissionError as e:
        raise DecodeError(f"Permission denied reading {path}; make it readable.") from e
    except IsADirectoryError as e:
        raise DecodeError(f"{path} is a directory; expected {kind} file.") from e
    except BlockingIOError as e:
        raise DecodeError(
            f"Reading {path} would block: it is not an ordinary file on disk (a kernel file such "
            "as /proc/kmsg, or a file another process holds a lease on); expected "
            f"{kind} file. Copy it to a regular file."
        ) from e
    except OSError as e:  # symlink loops, I/O errors, names too long, ...
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"Cannot read {path}: {e.strerror or e}.") from e



def regular_file_size(path: Path, kind: str) -> int:
    """The size of `path`, after checking that it is a regular file (`kind` file, e.g. "an
    image"): a folder named like one, a FIFO (opening it could block forever), a socket or a
    device is refused without being opened. Use inside `reading`."""
    status = path.stat()
    if stat.S_ISDIR(status.st_mode):
        raise DecodeError(f"{path} is a directory; expected {kind} file.")
    if not stat.S_ISREG(status.st_mode):
        raise DecodeError(f"{path} is not a regular file (a FIFO, socket or device); expected "
                          f"{kind} file.")
    return status.st_size


#: O_NONBLOCK: opening a FIFO, or a file another process holds a write lease on, returns at once
#: instead of blocking (until a writer comes, or for lease-break-time, 45 s), and reading a
#: kernel file that waits for data (/proc/kmsg, a symlink away) fails with EAGAIN. It changes
#: nothing for a file on disk. O_NOCTTY: a terminal is never made this process's own.
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def open_regular(path: Path, kind: str) -> tuple[int, int]:
    """(file descriptor, size) of `path` opened for reading without blocking, after checking
    on the open file itself (not the name, which may be swapped meanwhile) that it is a regular
    file (`kind` file, e.g. "an image"). The descriptor is non-blocking; the caller closes it.
    Use inside `reading`."""
    regular_file_size(path, kind)  # first by name: a socket cannot even be opened (ENXIO)
    fd = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            raise DecodeError(f"{path} is a directory; expected {kind} file.")
        if not stat.S_ISREG(status.st_mode):
            raise DecodeError(f"{path} is not a regular file (a FIFO, socket or device); "
                              f"expected {kind} file.")
    except BaseException:
        os.close(fd)
        raise
    return fd, status.st_size


def read_regular(path: Path, kind: str, limit: int, too_large: Callable[[str], str]) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them, read without blocking: a
    kernel file whose read would wait (its size says 0, as every /proc file's does) is a
    `DecodeError`. Over `limit`, the `DecodeError` says `too_large(size)`, where size is the
    byte count (or "more than LIMIT" for a file that grew past its stated size). Use inside
    `reading`."""
    fd, size = open_regular(path, kind)
    try:
        if size > limit:
            raise DecodeError(too_large(str(size)))
        parts, total = [], 0
        while True:
            part = os.read(fd, min(limit + 1 - total, max(size + 1 - total, 1 << 16), 1 << 24))
            if not part:
                return b"".join(parts)
            parts.append(part)
            total += len(part)
            if total > limit:  # grew since fstat, or a /proc file that says 0
                raise DecodeError(too_large(f"more than {limit}"))
    finally:
        os.close(fd)
