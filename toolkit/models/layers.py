"""Building blocks shared by model families: activations by name, the MLP head."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn as nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


def create_activation(name: str) -> nn.Module:
    """A fresh activation module by name; unknown names list the valid ones."""
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown model.activation {name!r}; valid activations: {', '.join(ACTIVATIONS)}."
        )
    return ACTIVATIONS[name]()


def mlp_head(
    in_features: int, hidden: Sequence[int], n_classes: int, activation: str, dropout: float
) -> nn.Sequential:
    """Hidden layers (dropout → linear → activation) then the output layer."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Dropout(dropout), nn.Linear(width, h), create_activation(activation)]
        width = h
    layers += [nn.Dropout(dropout), nn.Linear(width, n_classes)]
    return nn.Sequential(*layers)
