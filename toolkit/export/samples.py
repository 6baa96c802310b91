"""The real inputs an export is proven and calibrated on: held-out samples of a run, training
samples for INT8 calibration, and how decoded samples become one batch of model inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.training.data import Samples, split_samples

if TYPE_CHECKING:
    from toolkit.run import Run

#: Training samples INT8 calibration reads (at most), spread over the classes.
CALIBRATION_SAMPLES = 256


def spread(count: int, n: int) -> list[int]:
    """Up to `n` indices into a sequence of `count` items, evenly spaced from the first to the
    last (each at most once)."""
    if count < 1 or n < 1:
        return []
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int)).tolist()


def batch_of(decoder: Any, decoded: list[np.ndarray]) -> np.ndarray:
    """One batch of model inputs from decoded samples (every window of a windowed decoder's)."""
    return np.concatenate(decoded) if getattr(decoder, "windowed", False) else np.stack(decoded)


def held_out_samples(run: Run, data_dir: Path, n_samples: int) -> Samples:
    """Up to `n_samples` held-out inputs (files, or texts of a table) with their targets, spread
    evenly over the (class-sorted) held-out split."""
    name, items = run.split.held_out
    if not items:
        raise ValueError(f"{run.path} has no held-out samples to prove parity on.")
    if not data_dir.exists():
        raise FileNotFoundError(f"The run's data {data_dir} is missing. If it moved, pass --data "
                                "with its new place.")
    picks = spread(len(items), n_samples)
    samples = split_samples(data_dir, tuple(items[i] for i in picks), run.recipe.data)
    missing = [p for p in samples.sources if isinstance(p, Path) and not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Held-out sample {missing[0]} of the run's {name} split is missing ({len(missing)} "
            "in all). If the data moved, pass --data with its new folder."
        )
    return samples


def calibration_samples(run: Run, data_dir: Path, n: int = CALIBRATION_SAMPLES) -> Samples:
    """Up to `n` of the run's training samples for INT8 calibration, taken from each class in turn
    (evenly spaced within it), so that every class is represented when `n` allows."""
    by_class: dict[int, list[tuple[str, int]]] = {}
    for item in run.split.train:
        by_class.setdefault(item[1], []).append(item)
    if not by_class:
        raise ValueError(f"{run.path} has no training samples to calibrate INT8 on.")
    per_class = -(-n // len(by_class))
    picked = [[items[i] for i in spread(len(items), per_class)]
              for _, items in sorted(by_class.items())]
    turns = [picks[r] for r in range(per_class) for picks in picked if r < len(picks)]
    return split_samples(data_dir, tuple(turns[:n]), run.recipe.data)


def long_texts(texts: list[str], decoder: Any) -> list[str]:
    """Each text repeated until it is longer than the model's input, so that parity also covers
    texts that fill every position (truncated), not only padded ones."""
    length = decoder.spec.max_length
    out = []
    for text in texts:
        tokens = int((decoder.tokenize(text) != decoder.spec.pad_id).sum())
        out.append(" ".join([text] * (length // max(1, tokens) + 1)))
    return out
