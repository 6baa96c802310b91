"""Decode files in a thread pool while ONNX Runtime runs batches, in input order, memory bounded.

Pillow and ONNX Runtime release the GIL, so threads overlap decoding with inference. At most
`prefetch` batches are decoded ahead, so memory stays flat however many files there are. A file
that fails to decode yields an error instead of stopping the stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from toolkit_deploy.errors import DecodeError
from toolkit_deploy.session import available_cores


class Model(Protocol):
    """What the pipeline needs of a model: `Predictor`, or the training stack's PyTorch model."""

    labels: tuple[str, ...]
    path: Path
    decoder: Any

    def decode(self, source: Any) -> np.ndarray: ...

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


def _decode(predictor: Model, source: Any) -> np.ndarray | str:
    if isinstance(source, DecodeError):
        return f"{type(source).__name__}: {source}"  # failed before decoding (e.g. a bad row)
    try:
        return predictor.decode(source)
    except (DecodeError, OSError, ValueError, TypeError) as e:
        # Anything a bad file can provoke becomes that file's error; bugs elsewhere still raise.
        return f"{type(e).__name__}: {e}"


def predict_files(
    predictor: Model,
    sources: Sequence[Any],
    batch_size: int = 32,
    workers: int | None = None,
    prefetch: int = 4,
) -> Iterator[Prediction]:
    """Yield one `Prediction` per source, in order.

    Args:
        predictor: The model.
        sources: Inputs its decoder reads (file paths, texts, ...); a `DecodeError` in their
            place is an input that already failed, and yields its error.
        batch_size: Files per ONNX Runtime call.
        workers: Decoding threads; default: the cores available.
        prefetch: Batches decoded ahead of inference.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Got {batch_size}.")
    workers = workers or available_cores()
    if workers < 1:
        raise ValueError(f"workers must be >= 1. Got {workers}.")
    window = batch_size * max(1, prefetch)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque[Future] = deque()
        submitted = 0

        def fill() -> None:
            nonlocal submitted
            while submitted < len(sources) and len(pending) < window:
                pending.append(pool.submit(_decode, predictor, sources[submitted]))
                submitted += 1

        start = 0
        while start < len(sources):
            fill()
            size = min(batch_size, len(sources) - start)
            chunk = [pending.popleft().result() for _ in range(size)]
            fill()  # keep the decoders busy while this batch runs
            good = [i for i, r in enumerate(chunk) if isinstance(r, np.ndarray)]
            probs = predictor.run(np.stack([chunk[i] for i in good]))[1] if good else None
            row = dict(zip(good, probs, strict=True)) if good else {}
            for i, result in enumerate(chunk):
                if i in row:
                    yield Prediction(start + i, sources[start + i], row[i])
                else:
                    yield Prediction(start + i, sources[start + i], None, result)
            start += len(chunk)
