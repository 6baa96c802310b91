"""A model that exports unfaithfully on purpose, for tests of what a failed parity reports.

`toolkit_tests::swish` is a PyTorch custom operator computing x·sigmoid(x); `TRANSLATIONS` gives
the dynamo exporter an ONNX translation of it that computes x·sigmoid(1.1·x) instead, off by up
to ~0.03 per element. Export with `torch.onnx.export(..., custom_translation_table=TRANSLATIONS)`
(or pass it through the toolkit's export options) and parity fails, at that operator.

`Swish()` can also replace an activation of any toolkit model (e.g. `model.head[2] = Swish()`).
"""

from __future__ import annotations

import torch
from onnxscript import opset18 as op

#: How much the ONNX translation scales the sigmoid's input (PyTorch: 1.0).
WRONG_SCALE = 1.1


@torch.library.custom_op("toolkit_tests::swish", mutates_args=())
def swish(x: torch.Tensor) -> torch.Tensor:
    """x·sigmoid(x), as PyTorch runs it."""
    return x * torch.sigmoid(x)


@swish.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def swish_onnx(x):
    """The unfaithful translation: x·sigmoid(1.1·x)."""
    return op.Mul(x, op.Sigmoid(op.Mul(x, op.Constant(value_float=WRONG_SCALE))))


#: `custom_translation_table` for `torch.onnx.export(..., dynamo=True)`.
TRANSLATIONS = {torch.ops.toolkit_tests.swish.default: swish_onnx}

#: The operator's name as `Divergence.torch_op` and the export's messages give it.
OP_NAME = "toolkit_tests.swish"


class Swish(torch.nn.Module):
    """The custom operator as an activation module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swish(x)


class SwishNet(torch.nn.Module):
    """Linear → Swish → Linear over float32 N×`features` inputs."""

    def __init__(self, features: int = 8, hidden: int = 16, n_classes: int = 3) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(features, hidden)
        self.act = Swish()
        self.fc2 = torch.nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
