"""toolkit: train classifiers in PyTorch, export them to one ONNX file with proven parity.

The runtime (decoders, Predictor, scoring) is the separate `toolkit_deploy` package, which this one
builds on. Submodules are imported on use; `import toolkit` does not import torch.
"""

__version__ = "0.1.0"
