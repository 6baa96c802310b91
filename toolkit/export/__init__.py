"""Export: a run → one self-describing ONNX file, validated against PyTorch on real samples."""
