"""Reading weights: safetensors only, never pickle.

A PyTorch checkpoint written by `torch.save` (`.pt`, `.pth`, `.ckpt`) is a pickle, and unpickling
runs whatever code the file names, so a checkpoint from a stranger can take over the machine.
Toolkit writes and reads weights as safetensors (a JSON header and raw tensor bytes), which
cannot run code; a file that is not one is refused here with a message saying what it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolkit_deploy.errors import ModelFormatError
from toolkit_deploy.sniff import what_it_is

#: Suffixes of files that are (or usually hold) Python pickles.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")


def _refusal(path: Path, error: Exception) -> ModelFormatError:
    return ModelFormatError(
        f"{path} is not a safetensors file: it is {what_it_is(path)} ({error}). Toolkit reads "
        "weights only as safetensors and never unpickles a file, since a pickle can run any "
        "code. Use the weights `toolkit train` wrote, or convert a checkpoint you trust with "
        "safetensors.torch.save_file(torch.load(f, weights_only=True), 'weights.safetensors')."
    )


@contextlib.contextmanager
def open_weights(path: str | Path) -> Iterator[Any]:
    """`safetensors.safe_open(path, "pt")`, with a file that is not safetensors refused.

    Raises:
        FileNotFoundError: `path` does not exist.
        ModelFormatError: `path` is not a safetensors file (a pickle, a zip, damaged bytes).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {path} does not exist or is not a regular file.")
    try:
        with safe_open(path, "pt") as f:
            yield f
    except SafetensorError as e:  # a bad header, or tensor offsets past the end of the file
        raise _refusal(path, e) from e


def load_weights(path: str | Path) -> dict[str, Any]:
    """Every tensor of a safetensors file, by name (refused like `open_weights`)."""
    with open_weights(path) as f:
        return {key: f.get_tensor(key) for key in f.keys()}


def load_state(model: Any, path: str | Path) -> None:
    """Load a safetensors state dict into `model`, strictly.

    Raises:
        ModelFormatError: The file is not safetensors, or its tensors do not fit the model (other
            names or shapes: weights of another recipe or run).
    """
    state = load_weights(path)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelFormatError(
            f"The weights in {path} do not fit the model of this run's recipe: "
            f"{str(e).strip()[:500]}. They belong to another run, or the file was replaced."
        ) from e
