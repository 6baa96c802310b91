"""A pool of daemon threads whose stuck tasks can be timed out and left behind.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so one read
that never returns (a file on a hung mount, a kernel file, a decoder stuck in native code) kept
`toolkit score` alive after Ctrl-C, for good. These threads are daemons, so the process exits
however they are stuck; and `result` gives up on a task that has run `timeout` seconds: its
thread is left to finish on its own (its result is dropped) and a fresh thread takes its place,
so the pool keeps its size.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from typing import Any

#: Task priorities: the inputs the run waits for again (a batch that timed out, one at a time)
#: go before the batches decoded ahead.
URGENT, AHEAD = 0, 1


class DaemonPool:
    """`workers` daemon threads running submitted calls, earliest (and most urgent) first."""

    def __init__(self, workers: int, name: str) -> None:
        self._name = name
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()
        self._lock = threading.Lock()
        #: future → (thread running it, when it started)
        self._running: dict[Future, tuple[threading.Thread, float]] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False
        for _ in range(workers):
            self._add_thread()

    def _add_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            _, _, task = self._queue.get()
            if task is None or self._closed:
                return
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                self._running[future] = (me, time.monotonic())
            try:
                result = fn(*args)
            except BaseException as e:  # handed to whoever waits; this thread goes on
                future.set_exception(e)
            else:
                future.set_result(result)
            with self._lock:
                self._running.pop(future, None)
                if me not in self._threads:  # given up on while it ran: replaced already
                    return

    def submit(self, fn: Callable[..., Any], *args: Any, priority: int = AHEAD) -> Future:
        future: Future = Future()
        self._queue.put((priority, next(self._order), (future, fn, args)))
        return future

    def result(self, future: Future, timeout: float | None) -> Any:
        """The result of `future`, or `FutureTimeout` once it has run `timeout` seconds (time
        spent queued, or running before this call, does not count). A timed-out task's thread
        is left to itself and replaced."""
        if timeout is None:
            return future.result()
        called = time.monotonic()
        while True:
            with self._lock:
                running = self._running.get(future)
            if running is None and not future.done():
                try:  # queued: it does not count, but every thread may be stuck on a later task
                    return future.result(timeout)
                except FutureTimeout:
                    with self._lock:
                        if future not in self._running and not future.done():
                            self._add_thread()  # so that this one gets a thread
                    continue
            if running is None:
                return future.result()
            remaining = timeout - (time.monotonic() - max(called, running[1]))
            try:
                return future.result(max(0.0, remaining))
            except FutureTimeout:
                with self._lock:
                    running = self._running.get(future)
                    if running is None:  # it finished just now
                        continue
                    self._threads.remove(running[0])
                    self._add_thread()
                raise

    def close(self, wait: bool = True) -> None:
        """Cancel the calls not started and let the idle threads end; with `wait`, wait for
        those running (not for threads given up on).

        Without `wait` (the run was interrupted, or failed) nothing waits for the queue's lock:
        a `KeyboardInterrupt` raised inside one of its operations can have left it held, and the
        next operation would wait for good. The threads are then left as they are, daemons that
        keep nothing alive, and stop at their next task (`_closed`)."""
        self._closed = True
        if not wait:
            if not self._queue.mutex.acquire(timeout=1.0):
                return
            self._queue.mutex.release()
        while True:
            try:
                _, _, task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is not None:
                task[0].cancel()
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put((AHEAD + 1, next(self._order), None))  # after any work left
        if wait:
            for thread in threads:
                thread.join()
