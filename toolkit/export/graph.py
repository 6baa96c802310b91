"""The exported graph: the model wrapped with its softmax under the contract's names, and the one
call to torch.onnx's dynamo exporter that every export path (runs, your own modules, divergence
localisation) goes through.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from toolkit_deploy import names

MIN_OPSET = 18  # the dynamo exporter's floor


class WithProbabilities(torch.nn.Module):
    """The exported graph: the model's logits and their softmax (a multi-label model: one
    sigmoid per label), under the contract's names."""

    def __init__(self, model: torch.nn.Module, multilabel: bool = False) -> None:
        super().__init__()
        self.model = model
        self.multilabel = multilabel

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=1)


def export_program(model: torch.nn.Module, example: np.ndarray | torch.Tensor, opset: int,
                   *, multilabel: bool = False, **options: Any) -> torch.onnx.ONNXProgram:
    """Export with torch.onnx's dynamo exporter, batch axis dynamic, under the contract's names.

    There is no fallback to the TorchScript exporter: an export that fails raises. `options` go
    to `torch.onnx.export` (e.g. a `custom_translation_table` for a model's custom operators).
    A `multilabel` model's probabilities output is a sigmoid per label.
    """
    # torch 2.13's exporter logs a warning per torchvision op it cannot register (we do not use
    # torchvision) and torch.export emits a FutureWarning from its own internals: neither is
    # about the user's model, so they are kept out of the export's output.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)",
                                category=FutureWarning)
        return torch.onnx.export(
            WithProbabilities(model, multilabel).eval(),
            (torch.as_tensor(example),),
            dynamo=True,
            input_names=[names.INPUT],
            output_names=list(names.OUTPUTS),
            dynamic_shapes=({0: torch.export.Dim(names.BATCH_AXIS)},),
            opset_version=opset,
            verbose=False,
            **options,
        )
