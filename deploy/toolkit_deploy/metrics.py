"""Classification metrics in NumPy, shared by training (validation) and the runtime (evaluate)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(targets: Sequence[int], preds: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(targets, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return matrix


def classification_metrics(
    targets: Sequence[int], preds: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro and weighted F1, per-class precision/recall/F1/support, confusion matrix.

    A class with no predictions (or no samples) gets precision (or recall) 0, as scikit-learn's
    `zero_division=0` does.

    Returns:
        A JSON-ready dict with keys `n_samples`, `accuracy`, `macro_f1`, `weighted_f1`,
        `per_class` ({label: {precision, recall, f1, support}}), `labels`, `confusion_matrix`.
    """
    if len(targets) != len(preds):
        raise ValueError(f"targets and preds differ in length: {len(targets)} vs {len(preds)}.")
    n = len(targets)
    matrix = confusion_matrix(targets, preds, len(labels))
    tp = np.diag(matrix).astype(np.float64)
    support = matrix.sum(axis=1).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    return {
        "n_samples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        # Macro averages over the classes that occur, as a test set may lack some labels.
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / support.sum()) if n else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def format_metrics(metrics: dict[str, Any]) -> str:
    """A readable table of `classification_metrics`' result."""
    labels = metrics["labels"]
    width = max(12, *(len(label) for label in labels))
    lines = [
        f"samples {metrics['n_samples']}   accuracy {metrics['accuracy']:.4f}   "
        f"macro F1 {metrics['macro_f1']:.4f}   weighted F1 {metrics['weighted_f1']:.4f}",
        "",
        f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for label in labels:
        m = metrics["per_class"][label]
        lines.append(
            f"{label:<{width}} {m['precision']:>9.4f} {m['recall']:>9.4f} {m['f1']:>9.4f} "
            f"{m['support']:>8d}"
        )
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    longest = max(len(str(v)) for row in metrics["confusion_matrix"] for v in row)
    cell = max(5, longest, min(12, max(len(label) for label in labels))) + 1
    short = [label[: cell - 1] for label in labels]
    lines.append(" " * width + "".join(f"{s:>{cell}}" for s in short))
    for label, row in zip(labels, metrics["confusion_matrix"], strict=True):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
