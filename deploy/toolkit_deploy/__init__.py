"""Torch-free runtime for toolkit classifiers.

Decoders turn files into arrays, `Predictor` runs one ONNX model file, `toolkit_deploy.score.score`
turns a folder into a predictions table and `toolkit_deploy.evaluate.evaluate` measures a model on a
labelled folder. Heavy modules load on first use so that `import toolkit_deploy` stays cheap.
"""

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "Predictor": "toolkit_deploy.predictor",
    "ModelSpec": "toolkit_deploy.spec",
}

if TYPE_CHECKING:
    from toolkit_deploy.predictor import Predictor
    from toolkit_deploy.spec import ModelSpec

__all__ = ["Predictor", "ModelSpec", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toolkit_deploy' has no attribute {name!r}")
