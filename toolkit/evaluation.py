"""Evaluation of a training run (its PyTorch model) on a labelled folder.

The same figures as the runtime's `toolkit_deploy.evaluate` for a model file, through the same
decoders, pipeline and metrics code, so the two are directly comparable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.run import load_run
from toolkit.training.trainer import resolve_torch_device
from toolkit_deploy.decoders import Decoder, create_decoder
from toolkit_deploy.evaluate import evaluate_with


class TorchModel:
    """A run's PyTorch model behind the runtime's `Predictor` interface (decode, run, labels)."""

    def __init__(self, model: torch.nn.Module, decoder: Decoder, labels: tuple[str, ...],
                 device: torch.device, path: Path) -> None:
        self.model, self.decoder, self.labels = model.eval(), decoder, labels
        self.device, self.path = device, path

    def decode(self, source: Any) -> np.ndarray:
        return self.decoder(source)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits = self.model(torch.from_numpy(batch).to(self.device)).float()
        return logits.cpu().numpy(), logits.softmax(1).cpu().numpy()


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = None,
    weights: str = "best",
    batch_size: int = 32,
    device: str = "auto",
    progress: bool = False,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str | None = None,
    perturb: tuple[str, ...] = (),
    seed: int = 0,
    report: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Accuracy, F1, per-class figures and confusion matrix of a run's model on a labelled folder
    (or, for a text run, a labelled table).

    Returns:
        The same keys as `toolkit_deploy.evaluate.evaluate`.
    """
    loaded = load_run(run)
    torch_device = resolve_torch_device(device)
    options = {"encoding": encoding} if encoding else loaded.recipe.data.decoder_options
    decoder = create_decoder(loaded.recipe.modality, loaded.preprocess(), **options)
    model = TorchModel(loaded.load_model(weights).to(torch_device), decoder, loaded.labels,
                       torch_device, Path(run))
    # One decoding thread: torch already uses every core for the forward pass.
    return evaluate_with(model, data, split=split, batch_size=batch_size, workers=1,
                         progress=progress, text_column=text_column, label_column=label_column,
                         encoding=encoding, perturb=perturb, seed=seed, report=report)
