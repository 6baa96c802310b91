"""Real files and model files for the runtime tests (built with onnx and Pillow, no torch)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from toolkit_deploy import names
from toolkit_deploy.spec import ImagePreprocess, ModelSpec, ParityReport

LABELS = ("red", "green", "blue")
SIZE = 8


def colour_model_proto(
    labels: tuple[str, ...] = LABELS, size: int = SIZE, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    """A real toolkit-format model that classifies an image by its dominant colour channel.

    Graph: uint8 N×H×W×3 → float → mean over H, W → ×(10/255) → logits → softmax.
    """
    scale = numpy_helper.from_array(np.array(10.0 / 255.0, np.float32), "scale")
    axes = numpy_helper.from_array(np.array([1, 2], np.int64), "axes")
    nodes = [
        helper.make_node("Cast", [names.INPUT], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], [names.LOGITS]),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "colour",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.UINT8,
                                       [names.BATCH_AXIS, size, size, 3])],
        [helper.make_tensor_value_info(names.LOGITS, TensorProto.FLOAT, [names.BATCH_AXIS, 3]),
         helper.make_tensor_value_info(names.PROBABILITIES, TensorProto.FLOAT,
                                       [names.BATCH_AXIS, 3])],
        initializer=[scale, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if metadata is None:
        spec = ModelSpec(
            modality="image", labels=labels,
            preprocess=ImagePreprocess(height=size, width=size, resize="stretch"),
            opset=18, provenance={"recipe": {"name": "test"}},
            parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
        )
        metadata = spec.to_metadata()
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (20, 12),
                fmt: str | None = None) -> Path:
    """A solid-colour image with a little noise, so the dominant channel is its label."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    pixels = np.clip(np.array(colour) + rng.integers(-10, 10, (size[1], size[0], 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format=fmt)
    return path


COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
