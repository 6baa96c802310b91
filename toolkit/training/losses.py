"""Losses by name (`train.loss`): cross entropy, and squared / absolute error on probabilities.

Every loss takes logits and class indices, and supports label smoothing and class weights, so the
recipe keys mean the same whatever the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _soft_targets(targets: torch.Tensor, n: int, smoothing: float,
                  dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(targets, n).to(dtype) * (1 - smoothing) + smoothing / n


def _prob_error(power: int) -> Callable[..., torch.Tensor]:
    # The founding text's squared and absolute error, between softmax probabilities and targets.
    def per_sample(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
        diff = logits.softmax(dim=1) - _soft_targets(targets, logits.shape[1], smoothing,
                                                     logits.dtype)
        return diff.abs().pow(power).sum(dim=1)

    return per_sample


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=smoothing)


_PER_SAMPLE = {"cross_entropy": _cross_entropy, "mse": _prob_error(2), "l1": _prob_error(1)}
LOSSES = tuple(_PER_SAMPLE)


def create_loss(name: str, label_smoothing: float = 0.0,
                class_weights: Sequence[float] | None = None) -> LossFn:
    """The loss `name` as `fn(logits, targets) -> scalar`.

    Args:
        name: cross_entropy, mse or l1.
        label_smoothing: Share of the target mass spread evenly over the classes.
        class_weights: Weight of each class; the mean is weighted as torch's cross entropy does
            (sum of weighted losses / sum of the weights of the batch's targets).
    """
    if name not in _PER_SAMPLE:
        raise ValueError(f"Unknown train.loss {name!r}; valid losses: {', '.join(LOSSES)}.")
    per_sample = _PER_SAMPLE[name]
    weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        values = per_sample(logits.float(), targets, label_smoothing)
        if weights is None:
            return values.mean()
        w = weights.to(values.device)[targets]
        return (values * w).sum() / w.sum()

    return loss


def balanced_weights(targets: Sequence[int], n_classes: int) -> list[float]:
    """n / (classes × count) per class (scikit-learn's 'balanced'); absent classes get 0."""
    counts = torch.bincount(torch.as_tensor(list(targets)), minlength=n_classes).double()
    weights = torch.where(counts > 0, len(targets) / (n_classes * counts.clamp(min=1)), 0.0)
    return weights.tolist()


def create_label_set_loss(name: str, label_smoothing: float = 0.0,
                          pos_weight: Sequence[float] | None = None) -> LossFn:
    """The multi-label loss `name` as `fn(logits, multi_hot) -> scalar` (mean over labels).

    Args:
        name: cross_entropy (binary cross-entropy with logits, one sigmoid per label), or mse /
            l1 between sigmoid probabilities and the 0/1 targets.
        label_smoothing: Targets move from 0/1 to s/2 and 1 - s/2.
        pos_weight: Weight of each label's positives (BCE's `pos_weight`); cross_entropy only.
    """
    if name not in _PER_SAMPLE:
        raise ValueError(f"Unknown train.loss {name!r}; valid losses: {', '.join(LOSSES)}.")
    weights = torch.tensor(pos_weight, dtype=torch.float32) if pos_weight else None
    if weights is not None and name != "cross_entropy":
        raise ValueError(f"train.class_weights = \"balanced\" weighs positives in binary "
                         f"cross-entropy; train.loss {name!r} has no such weight. Use "
                         "train.loss = \"cross_entropy\" or class_weights = \"none\".")

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        soft = targets.float() * (1 - label_smoothing) + label_smoothing / 2
        if name == "cross_entropy":
            return F.binary_cross_entropy_with_logits(
                logits, soft, pos_weight=weights.to(logits.device) if weights is not None
                else None)
        power = 2 if name == "mse" else 1
        return (logits.sigmoid() - soft).abs().pow(power).mean()

    return loss
