"""Training-time augmentation of decoded batches (uint8 N×H×W×C), seeded."""

from __future__ import annotations

import torch

from toolkit.recipe import FLIPS


def random_flip(batch: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right (and, for `both`, upside down) with probability 1/2."""
    if mode not in FLIPS:
        raise ValueError(f"Unknown data.flip {mode!r}; valid flips: {', '.join(FLIPS)}.")
    axes = {"none": (), "horizontal": (2,), "both": (2, 1)}[mode]
    for axis in axes:
        mask = torch.rand(len(batch), generator=generator) < 0.5
        batch = torch.where(mask.view(-1, 1, 1, 1), batch.flip(axis), batch)
    return batch
