"""toolkit: train classifiers in PyTorch, export them to one ONNX file with proven parity.

The runtime (decoders, Predictor, scoring) is the separate `toolkit_deploy` package, which this one
builds on. Submodules are imported on use; `import toolkit` does not import torch.
"""

from toolkit.version import __version__

__all__ = ["__version__", "export_model"]


def __getattr__(name: str):
    # `toolkit.export_model` without importing torch at `import toolkit` (PEP 562).
    if name == "export_model":
        from toolkit.export.byo import export_model

        return export_model
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
