"""Evaluation of a model file on a labelled folder, without torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from toolkit_deploy.dataset import find_splits, read_labelled
from toolkit_deploy.errors import DatasetError
from toolkit_deploy.metrics import classification_metrics
from toolkit_deploy.pipeline import Model, predict_files
from toolkit_deploy.predictor import Predictor


def resolve_eval_folder(data: str | os.PathLike, split: str | None = None) -> tuple[Path, str]:
    """The class folder to evaluate on, and the split it is ('' for a plain labelled folder).

    For a split dataset (`DIR/train|val|test/<class>/…`) the default is `test`, else `val`.
    """
    data = Path(data)
    splits = find_splits(data)
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"--split {split} asked for, but {data} has splits {sorted(splits) or 'none'}."
            )
        return splits[split], split
    if not splits:
        return data, ""
    for name in ("test", "val"):
        if name in splits:
            return splits[name], name
    raise DatasetError(
        f"{data} has only a train split; evaluating on training data says little. Add "
        f"{data}/test/<class>/… or pass --split train explicitly."
    )


def evaluate(
    model: Predictor | str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Accuracy, F1, per-class figures and confusion matrix of a model file on a labelled folder.

    Files that fail to decode are not counted in the metrics; they are listed under `errors`.

    Returns:
        `classification_metrics` plus `model`, `data`, `split`, `n_failed`, `errors`.
    """
    predictor = model if isinstance(model, Predictor) else Predictor(model, device, threads)
    return evaluate_with(predictor, data, split=split, batch_size=batch_size, workers=workers,
                         progress=progress)


def evaluate_with(
    model: Model,
    data: str | os.PathLike,
    *,
    split: str | None = None,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """`evaluate` for anything with the `Predictor` interface (the training stack passes its
    PyTorch model this way, so both sides share decoding, batching and metrics)."""
    folder, split_name = resolve_eval_folder(data, split)
    dataset = read_labelled(folder, model.decoder.extensions, model.labels)

    from tqdm import tqdm

    targets, preds, errors = [], [], []
    stream = predict_files(model, dataset.paths, batch_size, workers)
    for p in tqdm(stream, total=len(dataset), desc="evaluate", unit="file", file=sys.stderr,
                  disable=None if progress else True):
        if p.probs is None:
            errors.append({"path": p.path.relative_to(folder).as_posix(), "error": p.error})
        else:
            targets.append(dataset.targets[p.index])
            preds.append(int(p.probs.argmax()))
    if not targets:
        raise DatasetError(f"No file of {folder} could be scored; first error: {errors[0]}.")
    return {
        "model": str(model.path),
        "data": str(folder),
        "split": split_name,
        **classification_metrics(targets, preds, model.labels),
        "n_failed": len(errors),
        "errors": errors,
    }
