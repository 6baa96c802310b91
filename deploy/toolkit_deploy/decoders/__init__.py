"""Decoders: the one implementation of "file → array", shared by training and serving.

A decoder is built from a model's preprocessing spec and turns a path, bytes or an in-memory object
into the exact array the model's graph input takes (one sample, no batch axis). Training reads its
files through the same decoders (`create_decoder`), so the two can never differ.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Decoder(Protocol):
    """What every modality's decoder offers."""

    modality: str
    extensions: tuple[str, ...]

    def __call__(self, source: Any) -> np.ndarray:
        """Decode one input into the model's per-sample array; raises `DecodeError`."""
        ...


def _image(preprocess: Any) -> Decoder:
    from toolkit_deploy.decoders.image import ImageDecoder

    return ImageDecoder(preprocess)


_FACTORIES = {"image": _image}


def create_decoder(modality: str, preprocess: Any) -> Decoder:
    """Build the decoder of `modality` for a preprocessing spec.

    Raises:
        ValueError: The modality has no decoder; the message lists the known ones.
    """
    if modality not in _FACTORIES:
        raise ValueError(
            f"No decoder for modality {modality!r}; valid modalities: {', '.join(modalities())}."
        )
    return _FACTORIES[modality](preprocess)


def modalities() -> list[str]:
    return sorted(_FACTORIES)
