"""Turning the ways reading a file can fail into `DecodeError`s that say what to do."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator
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
