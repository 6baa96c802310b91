"""`cnn`: a small convolutional network for images, preprocessing included."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from toolkit.models.layers import create_activation, mlp_head
from toolkit.models.registry import register_model


class ImageNormalize(nn.Module):
    """uint8 N×H×W×C → float32 N×C×H×W, scaled to [0, 1] and normalised by mean/std.

    Part of the model so that the exported graph takes the decoder's raw pixels.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return (x - self.mean) / self.std


class GlobalPool(nn.Module):
    """N×C×H×W → N×C (max or avg) or N×2C (avgmax: both, concatenated, as timm's)."""

    KINDS = ("max", "avg", "avgmax")

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"Unknown model.pool {kind!r}; valid pools: {', '.join(self.KINDS)}.")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = []
        if self.kind in ("avg", "avgmax"):
            pooled.append(x.mean(dim=(2, 3)))
        if self.kind in ("max", "avgmax"):
            pooled.append(x.amax(dim=(2, 3)))
        return torch.cat(pooled, dim=1) if len(pooled) > 1 else pooled[0]


def conv_stages(in_channels: int, channels: tuple[int, ...], activation: str) -> nn.Sequential:
    """Stages of conv 3×3 → batch norm → activation → max pool 2×2 (each halves H and W)."""
    stages: list[nn.Module] = []
    width = in_channels
    for out in channels:
        stages += [
            nn.Conv2d(width, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            create_activation(activation),
            nn.MaxPool2d(2),
        ]
        width = out
    return nn.Sequential(*stages)


class ConvClassifier(nn.Module):
    """Stages of conv 3×3 → batch norm → activation → max pool 2×2, global pooling, MLP head."""

    def __init__(
        self,
        in_channels: int,
        channels: tuple[int, ...],
        hidden: tuple[int, ...],
        n_classes: int,
        activation: str,
        dropout: float,
        pool: str,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        super().__init__()
        self.normalize = ImageNormalize(mean, std)
        self.features = conv_stages(in_channels, channels, activation)
        self.pool = GlobalPool(pool)
        width = channels[-1] * (2 if pool == "avgmax" else 1)
        self.head = mlp_head(width, hidden, n_classes, activation, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.normalize(x))  # N×C×H/2^k×W/2^k
        return self.head(self.pool(x))


@register_model("image", "cnn")
def cnn(recipe: Any, n_classes: int, preprocess: Any) -> ConvClassifier:
    m, p = recipe.model, preprocess
    return ConvClassifier(p.channels, m.channels, m.hidden, n_classes, m.activation, m.dropout,
                          m.pool, p.mean, p.std)
