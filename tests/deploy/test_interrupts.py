"""Ctrl-C and SIGTERM end a command within seconds, whatever it was doing (`interrupts`).

Found by CI: a resumed `toolkit score` sent SIGTERM stayed alive past two minutes. Python raises
the interrupt between two bytecodes of the main thread, which can be inside `queue.Queue`'s
`Condition.__enter__`, after its mutex was taken: the mutex stays locked, and the cleanup's next
queue operation (stopping the decoding threads) waited for good."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

from toolkit_deploy.cli import EXIT_INTERRUPTED
from toolkit_deploy.threads import DaemonPool


def test_closing_an_interrupted_pool_does_not_wait_for_a_queue_lock_left_held() -> None:
    pool = DaemonPool(2, "test")
    pool.submit(time.sleep, 0.01)
    pool._queue.mutex.acquire()  # as an interrupt inside Condition.__enter__ leaves it
    closed = threading.Event()
    threading.Thread(target=lambda: (pool.close(wait=False), closed.set()), daemon=True).start()
    assert closed.wait(10), "close(wait=False) waited for the queue's lock"
    pool._queue.mutex.release()


def test_closing_a_pool_ends_its_threads() -> None:
    pool = DaemonPool(2, "test")
    assert pool.result(pool.submit(sum, [1, 2]), None) == 3
    threads = list(pool._threads)
    pool.close(wait=False)
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def python(source: str, **options: object) -> subprocess.Popen:
    """A Python process running `source`, which prints 'ready' once it may be signalled."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(source)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def signal_when(process: subprocess.Popen, line: str, sig: signal.Signals) -> float:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == line
    process.send_signal(sig)
    return time.monotonic()


def finish(process: subprocess.Popen) -> str:
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return stderr


def test_a_cleanup_that_hangs_is_ended_after_the_grace_with_every_threads_stack() -> None:
    process = python("""
        import threading
        from toolkit_deploy import interrupts
        interrupts.GRACE_SECONDS = 1
        with interrupts.interruptible(4, "run it again"):
            try:
                print("ready", flush=True)
                threading.Event().wait()
            except KeyboardInterrupt:
                threading.Event().wait()  # a cleanup that never ends
        """)
    sent = signal_when(process, "ready", signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - sent < 10
    assert "did not end within 1 s" in stderr and "stopped: exiting now; run it again" in stderr
    assert 'File "<string>"' in stderr  # the stack of the stuck main thread


def test_a_second_signal_ends_the_process_at_once() -> None:
    process = python("""
        import threading
        from toolkit_deploy import interrupts
        interrupts.GRACE_SECONDS = 300
        with interrupts.interruptible(4, "run it again"):
            try:
                print("ready", flush=True)
                threading.Event().wait()
            except KeyboardInterrupt:
                print("cleanup", flush=True)
                threading.Event().wait()  # a slow cleanup
        """)
    signal_when(process, "ready", signal.SIGINT)
    sent = signal_when(process, "cleanup", signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - sent < 10
    assert "SIGTERM again: exiting now; run it again" in stderr


def test_after_a_signal_the_exit_does_not_wait_for_threads_left_running() -> None:
    # A non-daemon thread that never ends would keep a plain sys.exit waiting in the
    # interpreter's exit; the table is on disk, so the interrupted command ends without it.
    process = python("""
        import threading
        from toolkit_deploy import interrupts
        interrupts.GRACE_SECONDS = 300
        threading.Thread(target=threading.Event().wait).start()
        with interrupts.interruptible(4, "run it again") as state:
            try:
                print("ready", flush=True)
                threading.Event().wait()
            except KeyboardInterrupt:
                interrupts.exit_interrupted(state, 4)
        """)
    sent = signal_when(process, "ready", signal.SIGTERM)
    stderr = finish(process)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - sent < 10


def test_an_ignored_sigint_stays_ignored() -> None:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = python("""
        import time
        from toolkit_deploy import interrupts
        with interrupts.interruptible(4, "run it again"):
            try:
                print("ready", flush=True)
                time.sleep(1.5)
                print("finished", flush=True)
            except KeyboardInterrupt:
                interrupts.exit_interrupted(interrupts._State(), 4)
        """, preexec_fn=ignore)
    signal_when(process, "ready", signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "finished"
