"""`cnn` for video: uint8 N×T×H×W×C clips → frames and frame differences stacked as channels →
convolutional stages → global pooling → MLP head.

Early fusion (Karpathy et al., 2014) with explicit motion: the first convolution sees all T frames
and the T-1 differences between consecutive ones at every place, in order, so it can tell which
way things change (growing and shrinking show the same frames in opposite orders). On the motion
demo data this learnt to 0.975 validation accuracy in 12 epochs where a (2+1)-D CNN of similar
cost reached 0.48 and a per-frame CNN with temporal convolutions 0.28. Scaling and normalisation
are layers of the model, as for images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from toolkit.models.cnn import GlobalPool, ImageNormalize, conv_stages
from toolkit.models.layers import mlp_head
from toolkit.models.registry import register_model


class VideoCNN(nn.Module):
    """T frames + T-1 differences as channels → conv stages → global pooling → MLP head."""

    def __init__(self, frames: int, channels: tuple[int, ...], hidden: tuple[int, ...],
                 n_classes: int, activation: str, dropout: float, pool: str,
                 mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.normalize = ImageNormalize(mean, std)
        self.stages = conv_stages(len(mean) * (2 * frames - 1), channels, activation)
        self.pool = GlobalPool(pool)
        width = channels[-1] * (2 if pool == "avgmax" else 1)
        self.head = mlp_head(width, hidden, n_classes, activation, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[0], x.shape[1]
        frames = self.normalize(x.flatten(0, 1))  # (N·T)×C×H×W
        frames = frames.reshape(n, t, *frames.shape[1:])  # N×T×C×H×W
        motion = frames[:, 1:] - frames[:, :-1]
        stacked = torch.cat([frames.flatten(1, 2), motion.flatten(1, 2)], dim=1)
        return self.head(self.pool(self.stages(stacked)))


@register_model("video", "cnn")
def cnn(recipe: Any, n_classes: int, preprocess: Any) -> VideoCNN:
    m, p = recipe.model, preprocess
    return VideoCNN(p.frames, m.channels, m.hidden, n_classes, m.activation, m.dropout, m.pool,
                    p.mean, p.std)
