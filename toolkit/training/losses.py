"""Losses by name (`train.loss`): cross entropy, and squared / absolute error on probabilities."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _prob_error(reduce: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
    # The founding text's squared and absolute error: between softmax probabilities and one-hot.
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        diff = logits.softmax(dim=1) - F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        return reduce(diff).sum(dim=1).mean()

    return loss


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": _prob_error(torch.square),
    "l1": _prob_error(torch.abs),
}


def create_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name not in LOSSES:
        raise ValueError(f"Unknown train.loss {name!r}; valid losses: {', '.join(LOSSES)}.")
    return LOSSES[name]
