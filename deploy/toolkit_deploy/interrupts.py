"""Ctrl-C and SIGTERM for a command that keeps its work resumable: the process ends within
seconds, whatever it was doing when the signal came.

Python delivers a signal by raising `KeyboardInterrupt` between two bytecodes of the main thread,
which can be inside the standard library's own locking: a `queue.Queue` interrupted in
`Condition.__enter__` keeps its mutex locked for good (the `with` never got its `__exit__`), and a
later `put` or `get` on it waits forever. The cleanup of an interrupted run (commit the rows, stop
the decoders) can then hang, and so can the interpreter's exit, which joins the threads of
`concurrent.futures` pools. So, once a signal has come:

- the command's cleanup runs as usual (it commits the rows scored so far);
- a second Ctrl-C or SIGTERM ends the process at once;
- if the process is still alive `GRACE_SECONDS` later, it prints the stack of every thread (to
  show where it was stuck) and ends; the table is resumable as after `kill -9`, which the kill
  tests prove;
- `exit_interrupted` ends the process without the interpreter's exit (nothing is left to do:
  the table and its commit log are on disk), unless the command needs it (Ray's shutdown).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: Seconds an interrupted command has to end on its own before it is ended.
GRACE_SECONDS = 10.0


class _State:
    def __init__(self) -> None:
        self.signalled = False


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(sys.__stderr__.fileno() if sys.__stderr__ else 2, text.encode())


@contextlib.contextmanager
def interruptible(exit_code: int, resume_hint: str) -> Iterator[_State]:
    """Within the block, SIGTERM is a `KeyboardInterrupt` as Ctrl-C is, and a signal arms the
    second-signal and `GRACE_SECONDS` exits (with `exit_code`; `resume_hint` says how to go on).
    An ignored SIGINT (a command started with `nohup`, or in the background of a script) stays
    ignored. Yields a state whose `signalled` says whether a signal came."""
    state = _State()

    def force(why: str) -> None:
        _say(f"\n{why}: exiting now; {resume_hint}\n")
        os._exit(exit_code)

    def stuck() -> None:
        _say(f"\nThe interrupted run did not end within {GRACE_SECONDS:g} s; where each thread "
             "was:\n")
        with contextlib.suppress(Exception):
            faulthandler.dump_traceback(file=sys.__stderr__, all_threads=True)
        force("stopped")

    def stop(signum: int, frame: Any) -> None:
        if state.signalled:
            force(f"{signal.Signals(signum).name} again")
        state.signalled = True
        timer = threading.Timer(GRACE_SECONDS, stuck)
        timer.daemon = True
        timer.start()
        # A hang in the interpreter's own exit, where no Python thread runs any more, is ended
        # by faulthandler's native watchdog (it prints the stacks, then exits with status 1).
        faulthandler.dump_traceback_later(GRACE_SECONDS + 5, exit=True, file=sys.__stderr__)
        raise KeyboardInterrupt

    handled = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        handled.append(signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        yield state
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_interrupted(state: _State, exit_code: int, keep_interpreter: bool = False) -> None:
    """End an interrupted command with `exit_code`. After a signal, without the interpreter's
    exit (its joins of stuck threads could hang), unless `keep_interpreter` (atexit work that
    must run); an interrupt raised by code (a test) is a plain `SystemExit`."""
    if state.signalled and not keep_interpreter:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
