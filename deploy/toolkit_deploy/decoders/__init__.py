"""Decoders: the one implementation of "file → array", shared by training and serving.

A decoder is built from a model's preprocessing spec and turns a path, bytes or an in-memory object
into the exact array the model's graph input takes (one sample, no batch axis). Training reads its
files through the same decoders (`create_decoder`), so the two can never differ.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Protocol

import numpy as np


class Decoder(Protocol):
    """What every modality's decoder offers.

    A decoder may also have `decode_many(sources)` (decode a batch at once; each result an array
    or the exception of that source), `windowed = True` (each source gives K ≥ 1 model inputs,
    stacked, whose probabilities are averaged) and `isolate = True` (the runtime decodes in
    worker processes, so that a crash inside the decoder costs one input, not the run).
    """

    modality: str
    extensions: tuple[str, ...]

    def __call__(self, source: Any) -> np.ndarray:
        """Decode one input into the model's per-sample array; raises `DecodeError`."""
        ...


#: Modality → module holding its decoder class and `EXTENSIONS` (imported on first use).
_MODULES = {
    "image": ("toolkit_deploy.decoders.image", "ImageDecoder"),
    "text": ("toolkit_deploy.decoders.text", "TextDecoder"),
    "audio": ("toolkit_deploy.decoders.audio", "AudioDecoder"),
    "video": ("toolkit_deploy.decoders.video", "VideoDecoder"),
}


def _module(modality: str) -> Any:
    if modality not in _MODULES:
        raise ValueError(
            f"No decoder for modality {modality!r}; valid modalities: {', '.join(modalities())}."
        )
    return import_module(_MODULES[modality][0])


def create_decoder(modality: str, preprocess: Any, **options: Any) -> Decoder:
    """Build the decoder of `modality` for a preprocessing spec.

    Args:
        modality: `image`, `text`, ...
        preprocess: The model's preprocessing spec.
        **options: Decoder options that are not part of the model (e.g. a text `encoding`).

    Raises:
        ValueError: The modality has no decoder (the message lists the known ones), or an
            option the decoder does not take (e.g. a text `encoding` for an image model).
    """
    import inspect

    cls = getattr(_module(modality), _MODULES[modality][1])
    takes = list(inspect.signature(cls.__init__).parameters)[2:]  # after self and the spec
    unknown = sorted(set(options) - set(takes))
    if unknown:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in unknown)
        valid = f"it takes {', '.join(takes)}" if takes else "it takes no options"
        raise ValueError(f"{flags} does not apply to {modality} models (the {modality} decoder "
                         f"has no option {', '.join(map(repr, unknown))}: {valid}); drop it.")
    return cls(preprocess, **options)


def decoder_extensions(modality: str) -> tuple[str, ...]:
    """File extensions the decoder of `modality` reads (without building one)."""
    return _module(modality).EXTENSIONS


def modalities() -> list[str]:
    return sorted(_MODULES)
