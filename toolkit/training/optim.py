"""Optimizers and learning-rate schedules by name (`optim.name`, `optim.schedule`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn

from toolkit.recipe import OptimConfig


def _param_groups(model: nn.Module, weight_decay: float, decay_all: bool) -> list[dict]:
    # Decaying biases and normalisation scales (the 1-D parameters) usually hurts and is not what
    # weight decay is for, so they are left alone unless the recipe asks.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 or decay_all else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


OPTIMIZERS: dict[str, Callable[[list[dict], OptimConfig], torch.optim.Optimizer]] = {
    "sgd": lambda g, c: torch.optim.SGD(g, lr=c.lr),
    "momentum": lambda g, c: torch.optim.SGD(g, lr=c.lr, momentum=c.momentum),
    "nesterov": lambda g, c: torch.optim.SGD(g, lr=c.lr, momentum=c.momentum, nesterov=True),
    "adam": lambda g, c: torch.optim.Adam(g, lr=c.lr, betas=tuple(c.betas)),
    "adamw": lambda g, c: torch.optim.AdamW(g, lr=c.lr, betas=tuple(c.betas)),
}


def create_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer named by `config.name`, with weight decay on weights only."""
    if config.name not in OPTIMIZERS:
        raise ValueError(
            f"Unknown optim.name {config.name!r}; valid optimizers: {', '.join(OPTIMIZERS)}."
        )
    groups = _param_groups(model, config.weight_decay, config.decay_bias_and_norm)
    return OPTIMIZERS[config.name](groups, config)


SCHEDULES = ("constant", "step", "cosine")


def lr_factor(config: OptimConfig, epoch: float, epochs: int) -> float:
    """Multiplier of the peak learning rate at a (fractional) epoch.

    Linear warm-up over `warmup_epochs`, then constant, step (×0.1 at 50 % and 75 %) or cosine to 0.
    """
    if config.schedule not in SCHEDULES:
        raise ValueError(
            f"Unknown optim.schedule {config.schedule!r}; valid schedules: {', '.join(SCHEDULES)}."
        )
    warmup = config.warmup_epochs
    if warmup and epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / max(1, epochs - warmup)
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if config.schedule == "step":
        return 0.1 ** sum(progress >= m for m in (0.5, 0.75))
    return 1.0
