"""Evaluation of a training run (its PyTorch model) on a labelled folder.

The same figures as the runtime's `toolkit_deploy.evaluate` for a model file, through the same
decoders, pipeline and metrics code, so the two are directly comparable.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.run import load_run
from toolkit.training.trainer import resolve_torch_device
from toolkit_deploy.decoders import Decoder, create_decoder
from toolkit_deploy.evaluate import EvalOptions, evaluate_with


class TorchModel:
    """A run's PyTorch model behind the runtime's `Predictor` interface (decode, run, labels)."""

    def __init__(self, model: torch.nn.Module, decoder: Decoder, labels: tuple[str, ...],
                 device: torch.device, path: Path, thresholds: tuple[float, ...] = ()) -> None:
        self.model, self.decoder, self.labels = model.eval(), decoder, labels
        self.device, self.path = device, path
        # A multi-label run: sigmoid probabilities, and the run's thresholds make the label sets.
        self.thresholds, self.multilabel = thresholds, bool(thresholds)

    def decode(self, source: Any) -> np.ndarray:
        return self.decoder(source)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            logits = self.model(torch.from_numpy(batch).to(self.device)).float()
        probs = logits.sigmoid() if self.multilabel else logits.softmax(1)
        return logits.cpu().numpy(), probs.cpu().numpy()


_DEFAULT = EvalOptions()


def evaluate_run(
    run: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = _DEFAULT.split,
    weights: str = "best",
    batch_size: int = _DEFAULT.batch_size,
    device: str = "auto",
    progress: bool = _DEFAULT.progress,
    text_column: str = _DEFAULT.text_column,
    label_column: str = _DEFAULT.label_column,
    encoding: str | None = _DEFAULT.encoding,
    perturb: tuple[str, ...] = _DEFAULT.perturb,
    seed: int = _DEFAULT.seed,
    report: str | os.PathLike | None = _DEFAULT.report,
) -> dict[str, Any]:
    """Accuracy, F1, per-class figures and confusion matrix of a run's model on a labelled folder
    (or, for a text run, a labelled table).

    `weights` and `device` are the model's; the other arguments are `EvalOptions`'.

    Returns:
        The same keys as `toolkit_deploy.evaluate.evaluate`.
    """
    options = EvalOptions(split=split, batch_size=batch_size, progress=progress,
                          text_column=text_column, label_column=label_column,
                          encoding=encoding, perturb=perturb, seed=seed, report=report)
    return evaluate_run_with(run, data, options, weights=weights, device=device)


def evaluate_run_with(run: str | os.PathLike, data: str | os.PathLike, options: EvalOptions, *,
                      weights: str = "best", device: str = "auto") -> dict[str, Any]:
    """`evaluate_run` with its options built; the runtime's `toolkit evaluate RUN` and `toolkit
    compare RUN --data` call it through the `toolkit.run_folders` entry point `evaluate`."""
    loaded = load_run(run)
    torch_device = resolve_torch_device(device)
    encoding = options.encoding
    decoder_options = {"encoding": encoding} if encoding else loaded.recipe.data.decoder_options
    decoder = create_decoder(loaded.recipe.modality, loaded.preprocess(), **decoder_options)
    model = TorchModel(loaded.load_model(weights).to(torch_device), decoder, loaded.labels,
                       torch_device, Path(run),
                       loaded.thresholds() if loaded.multilabel else ())
    # One decoding thread: torch already uses every core for the forward pass.
    return evaluate_with(model, data, replace(options, workers=1))
