"""Turning the ways writing an output can fail (a full disk, a size limit, a folder that is not
writable) into `OutputError`s that say where, why, what to do, and what was kept; and opening the
side files beside an output (`OUT.partial`, its commit log, a staged summary) so that they never
write through a link planted at their name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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


#: Flags that keep `os.open` from following a symlink at the name (0 where the OS lacks them).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def check_side_file(path: Path, out: Path) -> bool:
    """Whether a side file of `out` is at `path` (a regular file, left by an earlier run).

    Raises:
        OutputError: Something else is at `path`: a symlink (which could make the run overwrite
            its target), a folder, a FIFO, ...
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISREG(mode):
        return True
    what = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
    raise OutputError(
        f"{path} is {what}; the side files of {out} are written only as regular files of their "
        "own, never through a link, so that a planted link cannot make a run overwrite another "
        f"file. Nothing was written; remove {path} (or choose another --out) and run again.")


def create_side_file(path: Path, out: Path, kept: str = "") -> BinaryIO:
    """A new, empty file at `path`, open for writing. A regular file there (left by an earlier
    run) is replaced; anything else is refused (`check_side_file`). The file is created with
    O_EXCL and O_NOFOLLOW, so that a link planted between the check and the creation is refused
    too, never followed.

    Raises:
        OutputError: It cannot be created.
    """
    with output_errors(path, out, kept):
        if check_side_file(path, out):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    return os.fdopen(fd, "wb")


def open_side_file(path: Path, out: Path, kept: str = "") -> BinaryIO:
    """The existing regular file at `path`, open for appending (never through a link).

    Raises:
        OutputError: It is not a regular file, or it cannot be opened.
    """
    with output_errors(path, out, kept):
        if not check_side_file(path, out):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | _NOFOLLOW)
    return os.fdopen(fd, "ab")


def write_side_text(path: Path, out: Path, text: str, kept: str = "") -> None:
    """Write `text` (UTF-8) as a new side file at `path` (`create_side_file`).

    Raises:
        OutputError: It cannot be written.
    """
    with output_errors(path, out, kept), create_side_file(path, out, kept) as f:  # close too
        f.write(text.encode("utf-8"))


def stage_text(path: Path, text: str) -> Path:
    """Write `text` to `<path>.partial` (a new file, never through a link), to be moved onto
    `path` once the rest is done; a failure leaves nothing behind.

    Raises:
        OutputError: It cannot be written.
    """
    tmp = path.with_name(path.name + ".partial")
    try:
        write_side_text(tmp, path, text)
    except BaseException:
        if not tmp.is_symlink():  # a planted link is refused, and left for the user to see
            tmp.unlink(missing_ok=True)
        raise
    return tmp
