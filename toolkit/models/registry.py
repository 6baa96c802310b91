"""The registry of model families: `register_model` (each family module registers its builders
on import) and `create_model`, which the `toolkit.models` package offers once every family is
registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

_FAMILIES: dict[tuple[str, str], Callable[..., nn.Module]] = {}


def register_model(modality: str, family: str) -> Callable:
    """Register a builder `fn(recipe, n_classes, preprocess) -> nn.Module` for a modality and
    family."""

    def decorate(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _FAMILIES[(modality, family)] = fn
        return fn

    return decorate


def list_models(modality: str | None = None) -> list[str]:
    return sorted(f for m, f in _FAMILIES if modality in (None, m))


def create_model(recipe: Any, n_classes: int, preprocess: Any = None) -> nn.Module:
    """Build the recipe's model for `n_classes` outputs.

    The model takes the runtime's decoded batch (e.g. uint8 N×H×W×C images, int64 N×L token ids)
    and returns logits; all arithmetic preprocessing happens inside it, so the exported graph has
    it too.

    Args:
        recipe: The recipe.
        n_classes: Outputs.
        preprocess: The run's preprocessing spec (default: the recipe's; text models need the
            run's, which knows the tokenizer's vocabulary).
    """
    key = (recipe.modality, recipe.model.family)
    if key not in _FAMILIES:
        raise ValueError(
            f"Unknown model.family {recipe.model.family!r} for {recipe.modality}; valid families: "
            f"{', '.join(list_models(recipe.modality))}."
        )
    if n_classes < 2:
        raise ValueError(f"A classifier needs at least 2 classes. Got {n_classes}.")
    if preprocess is None:
        if recipe.modality == "text":
            raise ValueError("A text model needs the run's TextPreprocess (its vocabulary).")
        preprocess = recipe.data.preprocess()
    return _FAMILIES[key](recipe, n_classes, preprocess)

