"""Decode files in a thread pool while ONNX Runtime runs batches, in input order, memory bounded.

Pillow, tokenizers' batch encoding and ONNX Runtime release the GIL, so threads overlap decoding
with inference. At most `prefetch` batches are decoded ahead, so memory stays flat however many
files there are. An input that fails to decode, whatever it raises (`errors.ends_run`), yields
its error instead of stopping the stream, and so does one that decodes for longer than `timeout`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from toolkit_deploy.errors import DecodeError, ModelOutputError, ends_run, error_message
from toolkit_deploy.names import BATCH_SIZE
from toolkit_deploy.session import available_cores
from toolkit_deploy.threads import URGENT, DaemonPool


class Model(Protocol):
    """What the pipeline needs of a model: `Predictor`, or the training stack's PyTorch model."""

    labels: tuple[str, ...]
    path: Path
    decoder: Any

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Prediction:
    """The outcome for one input.

    Attributes:
        index: Position of the input in the input sequence.
        source: The input (a file path, a text, ...).
        probs: Class probabilities, or None when the input failed.
        error: Why the input failed ('' when it was scored).
    """

    index: int
    source: Any
    probs: np.ndarray | None
    error: str = ""


def predict_arrays(model: Model, arrays: Sequence[np.ndarray],
                   max_rows: int = BATCH_SIZE) -> np.ndarray:
    """Probabilities (len(arrays) × classes) of decoded samples in one model run. A windowed
    decoder's samples are K × input each: their windows run `max_rows` at a time (ONNX Runtime's
    memory grows with the rows of a call: eight 10-minute clips in one call took 9 GB), and each
    sample gets the mean of its windows' probabilities."""
    if not getattr(model.decoder, "windowed", False):
        return model.run(np.stack(arrays))[1]
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1. Got {max_rows}.")
    counts = [len(a) for a in arrays]
    windows = np.concatenate(arrays)
    probs = np.concatenate([model.run(windows[i : i + max_rows])[1]
                            for i in range(0, len(windows), max_rows)])
    return np.stack([p.mean(axis=0) for p in np.split(probs, np.cumsum(counts)[:-1])])


def output_error(probs: np.ndarray) -> str:
    """The error of an input whose probabilities are not all finite ('' when they are): a model
    that yields NaN or Inf gives no prediction, rather than the first label by accident."""
    if np.isfinite(probs).all():
        return ""
    return error_message(ModelOutputError(
        "the model's output contains NaN or Inf for this input, so it has no prediction (the "
        "model is numerically unstable on it: check the input, and the model on similar ones)."))


def _decode(decoder: Any, source: Any) -> np.ndarray | str:
    try:
        return decoder(source)
    except BaseException as e:  # a Rust panic (tokenizers) derives from BaseException
        # Whatever a bad input provokes in a decoder library (SyntaxError, struct.error,
        # MemoryError, ...) is that input's error; only what `ends_run` says stops the run.
        if ends_run(e):
            raise
        return error_message(e)


def decode_chunk(decoder: Any, chunk: Sequence[Any]) -> list[np.ndarray | str]:
    """Decode a batch worth of sources: an array, or an error message, for each."""
    results: list[np.ndarray | str] = [
        error_message(s) if isinstance(s, DecodeError) else "" for s in chunk]  # failed before
    todo = [i for i, s in enumerate(chunk) if not isinstance(s, DecodeError)]
    many = getattr(decoder, "decode_many", None)
    if many is None:
        for i in todo:
            results[i] = _decode(decoder, chunk[i])
        return results
    try:
        decoded = many([chunk[i] for i in todo])
    except BaseException as e:  # as in _decode: then each input alone, to find the bad ones
        if ends_run(e):
            raise
        decoded = [_decode(decoder, chunk[i]) for i in todo]
    for i, result in zip(todo, decoded, strict=True):
        results[i] = error_message(result) if isinstance(result, BaseException) else result
    return results


THREAD_TIMED_OUT = ("DecodeTimeout: decoding this input took longer than {:g} s, so it was "
                    "given up on (its thread is left to finish on its own); the file is likely "
                    "unreadable (a hung mount) or malformed. Raise the limit (--timeout) if it "
                    "is only very long.")


class _Threads:
    """Decoding in daemon threads of this process (decoders that release the GIL and cannot
    crash it), one task per input, or per batch for a decoder with `decode_many`. An input
    still decoding `timeout` seconds after it started (and after its turn came) gets the
    `DecodeTimeout` error; a batch that does is decoded again one input at a time, to learn
    which. A stuck thread cannot be stopped: it is left behind (a daemon, it never keeps the
    process alive) and replaced."""

    def __init__(self, decoder: Any, workers: int, timeout: float | None) -> None:
        self.decoder, self.timeout = decoder, timeout
        self.batched = getattr(decoder, "decode_many", None) is not None
        self.pool = DaemonPool(workers, "decode")

    def submit(self, chunk: Sequence[Any]) -> Any:
        if self.batched:
            return [self.pool.submit(decode_chunk, self.decoder, chunk)]
        return [self.pool.submit(decode_chunk, self.decoder, [s]) for s in chunk]

    def result(self, handle: Any, chunk: Sequence[Any]) -> list[np.ndarray | str]:
        if self.batched:
            with contextlib.suppress(FutureTimeout):
                return self.pool.result(handle[0], self.timeout)
            handle = [self.pool.submit(decode_chunk, self.decoder, [s], priority=URGENT)
                      for s in chunk]
        results: list[np.ndarray | str] = []
        for future in handle:
            try:
                results.append(self.pool.result(future, self.timeout)[0])
            except FutureTimeout:
                results.append(THREAD_TIMED_OUT.format(self.timeout))
        return results

    def close(self, wait: bool = True) -> None:
        self.pool.close(wait=wait)


#: The decoder of a worker process, built once by `_start_worker`.
_WORKER_DECODER: Any = None

CRASHED = ("DecoderCrash: the decoding process died on this input (a crash inside the decoder "
           "library); the file is likely malformed.")
#: Seconds an input may take to decode (in a thread, or a worker process) before it gets the
#: `DecodeTimeout` error (`predict_files(timeout=...)`, `score --timeout`).
DEFAULT_TIMEOUT = 300.0
TIMED_OUT = ("DecodeTimeout: decoding this input took longer than {:g} s, so its worker process "
             "was killed; the file is likely malformed. Raise the limit (--timeout) if it is "
             "only very long.")


def _start_worker(module: str, name: str, spec: Any) -> None:
    global _WORKER_DECODER
    from importlib import import_module

    _watch_parent()
    _WORKER_DECODER = getattr(import_module(module), name)(spec)


def _watch_parent() -> None:
    """End this worker process as soon as the process that started it dies (SIGKILL, a crash):
    a worker would otherwise stay, stuck on an input or waiting for work, holding the caller's
    pipes, and the resource tracker with it (found killing `toolkit score` on videos)."""
    import multiprocessing
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait([parent.sentinel])  # ready when the parent's end of the pipe closes: it died
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _decode_in_worker(chunk: Sequence[Any]) -> list[np.ndarray | str]:
    return decode_chunk(_WORKER_DECODER, chunk)


def _ready() -> None:
    """A task that does nothing: once it is done, a worker has started."""


def check_spawnable_main() -> None:
    """Refuse to start spawned workers that could not start: each re-runs the main module of
    this program from its file, and a script read from standard input (`python - < s.py`,
    `__main__.__file__ == '<stdin>'`) has none, so every worker would die and every input be
    blamed as malformed.

    Raises:
        WorkerStartError: The main module names a file that does not exist.
    """
    import os
    import sys

    from toolkit_deploy.errors import WorkerStartError

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(main, "__file__", None)
    if getattr(spec, "name", None) or path is None or os.path.isfile(path):
        return  # run as a module (-m), interactively or with -c, or from a file: importable
    raise WorkerStartError(
        f"Video decoding runs in spawned worker processes, which start by importing this "
        f"program's main module, but it is {path!r}, not a file they can import (a script read "
        f"from standard input?). Save the script to a file and run `python script.py` (with "
        f"the scoring under `if __name__ == '__main__':`), or use `toolkit score`.")


class _Processes:
    """Decoding in worker processes, one task per input, for decoders that parse untrusted data
    in native code (FFmpeg), where a file can crash or hang the decoder:

    - when a worker dies, the pool is replaced, and the inputs it was working on are decoded
      again one at a time: an input that kills a worker again gets the `DecoderCrash` error;
    - an input still decoding `timeout` seconds after its turn came (every input before it done)
      gets the `DecodeTimeout` error: a running task cannot be cancelled, so the pool's workers
      are killed and the pool replaced, and the other inputs in flight are decoded again.

    Either way the run goes on."""

    def __init__(self, decoder: Any, workers: int, timeout: float | None) -> None:
        check_spawnable_main()
        cls = type(decoder)
        self.args = (cls.__module__, cls.__qualname__, decoder.spec)
        self.workers, self.timeout = workers, timeout
        self.pool = self._new_pool(first=True)

    def _new_pool(self, first: bool = False) -> ProcessPoolExecutor:
        # spawn: a fresh interpreter, not a fork of one that runs ONNX Runtime's threads.
        pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=self.args)
        # A worker's start (interpreter, imports, decoder) never counts against an input. Workers
        # that cannot start at all, before any input, stop the run (no input is to blame); a
        # replacement pool that cannot start leaves each input to find it broken, and say so.
        try:
            pool.submit(_ready).result()
        except BrokenProcessPool as e:
            if not first:
                return pool
            pool.shutdown(wait=False, cancel_futures=True)
            from toolkit_deploy.errors import WorkerStartError

            raise WorkerStartError(
                "The video decoding worker processes died while starting, before any input "
                "(their error is printed above). Spawned workers import this program's main "
                "module: in a script, put the scoring under `if __name__ == '__main__':`, or "
                "use `toolkit score`.") from e
        return pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self.pool is broken:
            broken.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()

    @staticmethod
    def _kill_workers(pool: ProcessPoolExecutor) -> None:
        kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
        if kill is not None:
            kill()
            return
        for process in list((pool._processes or {}).values()):  # before 3.14: no public way
            process.kill()

    @staticmethod
    def _submit(pool: ProcessPoolExecutor, source: Any) -> Any:
        try:
            return pool.submit(_decode_in_worker, [source])
        except BrokenProcessPool:  # a worker died since the pool was last looked at
            return None

    def submit(self, chunk: Sequence[Any]) -> Any:
        pool = self.pool
        return pool, [self._submit(pool, source) for source in chunk]

    def result(self, handle: Any, chunk: Sequence[Any]) -> list[np.ndarray | str]:
        pool, futures = handle
        results: list[np.ndarray | str] = []
        for source, future in zip(chunk, futures, strict=True):
            outcome = self._wait(pool, future)
            if outcome is None:  # the pool broke: decode it alone to learn whether it was this one
                alone = self.pool
                outcome = self._wait(alone, self._submit(alone, source))
            results.append(CRASHED if outcome is None else outcome)
        return results

    def _wait(self, pool: ProcessPoolExecutor, future: Any) -> np.ndarray | str | None:
        """The outcome of one input's task, or None when its pool broke under it (or before it
        could be submitted)."""
        with contextlib.suppress(BrokenProcessPool, CancelledError):  # cancelled: pool replaced
            try:
                if future is not None:
                    return future.result(timeout=self.timeout)[0]
            except FutureTimeout:
                self._kill_workers(pool)
                self._replace(pool)
                return TIMED_OUT.format(self.timeout)
        self._replace(pool)
        return None

    def close(self, wait: bool = True) -> None:
        if not wait:  # interrupted: a worker may be stuck on an input
            self._kill_workers(self.pool)
        self.pool.shutdown(wait=wait, cancel_futures=True)


def predict_files(
    predictor: Model,
    sources: Sequence[Any],
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    prefetch: int = 4,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Iterator[Prediction]:
    """Yield one `Prediction` per source, in order.

    Each decoding task takes one batch worth of sources (a decoder with `decode_many`, such as
    text's, decodes them in one call); at most `prefetch` batches are decoded ahead. Decoders
    marked `isolate` (video) run in worker processes, one input per task, the others in threads.

    Args:
        predictor: The model.
        sources: Inputs its decoder reads (file paths, texts, ...); a `DecodeError` in their
            place is an input that already failed, and yields its error.
        batch_size: Inputs per ONNX Runtime call.
        workers: Decoding threads (or processes); default: the cores available.
        prefetch: Batches decoded ahead of inference.
        timeout: Seconds an input may take to decode before it gets a `DecodeTimeout` error;
            None: no limit. A worker process stuck on it is killed; a thread, which cannot be
            stopped, is left behind (a daemon) and replaced.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Got {batch_size}.")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, or None for no limit. Got {timeout}.")
    workers = workers or available_cores()
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Got {workers}.")
    starts = range(0, len(sources), batch_size)
    if getattr(predictor.decoder, "isolate", False):
        decoding: _Threads | _Processes = _Processes(predictor.decoder, workers, timeout)
    else:
        decoding = _Threads(predictor.decoder, workers, timeout)
    finished = False
    try:
        pending: deque[tuple[Any, Sequence[Any]]] = deque()
        ahead = iter(starts)

        def fill() -> None:
            while len(pending) < max(1, prefetch):
                begin = next(ahead, None)
                if begin is None:
                    return
                chunk = sources[begin : begin + batch_size]
                pending.append((decoding.submit(chunk), chunk))

        for start in starts:
            fill()
            chunk = decoding.result(*pending.popleft())
            fill()  # keep the decoders busy while this batch runs
            good = [i for i, r in enumerate(chunk) if isinstance(r, np.ndarray)]
            probs = (predict_arrays(predictor, [chunk[i] for i in good], batch_size) if good
                     else None)
            row = dict(zip(good, probs, strict=True)) if good else {}
            for i, result in enumerate(chunk):
                if i in row and output_error(row[i]):
                    yield Prediction(start + i, sources[start + i], None, output_error(row[i]))
                elif i in row:
                    yield Prediction(start + i, sources[start + i], row[i])
                else:
                    yield Prediction(start + i, sources[start + i], None, result)
        finished = True
    finally:
        decoding.close(wait=finished)
