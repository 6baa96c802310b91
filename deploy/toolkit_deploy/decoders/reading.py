"""Turning the ways reading a file can fail into `DecodeError`s that say what to do."""

from __future__ import annotations

import contextlib
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
