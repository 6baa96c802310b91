"""Turning the ways writing an output can fail (a full disk, a size limit, a folder that is not
writable) into `OutputError`s that say where, why, what to do, and what was kept."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from toolkit_deploy.errors import OutputError


def output_error(error: OSError, path: Path, out: Path, kept: str = "") -> OutputError:
    """The `OutputError` for `error`, met writing `path` on the way to `out`: what failed, why,
    what to do, and what was `kept`."""
    if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        fix = ("the disk is full or a file size limit was reached (quota, ulimit -f): free some "
               "space, or write elsewhere with --out")
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = (f"{path.parent} is not writable here: choose a folder you can write to with "
               "--out, or change its permissions")
    else:
        fix = "check the disk and the folder, then run again"
    untouched = f"{out} was not replaced" if out.exists() else f"Nothing was written to {out}"
    return OutputError(f"Cannot write {path}: {error.strerror or error}. Fix: {fix}. "
                       f"{untouched}{'; ' + kept if kept else ''}.")


@contextlib.contextmanager
def output_errors(path: Path, out: Path, kept: str = "") -> Iterator[None]:
    """Re-raise an OS error met writing `path` (on the way to `out`) as its `OutputError`."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        raise output_error(e, path, out, kept) from e


def stage_text(path: Path, text: str) -> Path:
    """Write `text` to `<path>.partial`, to be moved onto `path` once the rest is done; a failure
    leaves nothing behind.

    Raises:
        OutputError: It cannot be written.
    """
    tmp = path.with_name(path.name + ".partial")
    try:
        with output_errors(tmp, path):
            tmp.write_text(text, encoding="utf-8")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp
