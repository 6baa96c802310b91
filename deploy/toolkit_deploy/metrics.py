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


#: Top-k accuracies reported (those with k below the number of classes).
TOP_KS = (2, 3, 5)
#: Most confused (true, predicted) pairs reported.
CONFUSED_PAIRS = 5


def top_k_accuracy(targets: Sequence[int], probs: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k most probable (ties: the lower index)."""
    if len(targets) == 0:
        return 0.0
    ranked = np.argsort(-np.asarray(probs), axis=1, kind="stable")[:, :k]
    return float((ranked == np.asarray(targets)[:, None]).any(axis=1).mean())


def confused_pairs(matrix: np.ndarray, labels: Sequence[str],
                   most: int = CONFUSED_PAIRS) -> list[dict[str, Any]]:
    """The off-diagonal cells with the most samples: which true class is taken for which."""
    support = matrix.sum(axis=1)
    cells = [(int(matrix[t, p]), t, p) for t in range(len(labels)) for p in range(len(labels))
             if t != p and matrix[t, p] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"true": labels[t], "predicted": labels[p], "count": n,
             "share_of_true": n / int(support[t])} for n, t, p in cells[:most]]


def classification_metrics(
    targets: Sequence[int], preds: Sequence[int], labels: Sequence[str],
    probs: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, top-k accuracy, macro and weighted F1, per-class precision/recall/F1/support,
    confusion matrix and the most confused class pairs.

    A class with no predictions (or no samples) gets precision (or recall) 0, as scikit-learn's
    `zero_division=0` does.

    Args:
        targets: True class indices.
        preds: Predicted class indices.
        labels: Class names.
        probs: Class probabilities (N × classes), for top-k accuracy; omitted when None.

    Returns:
        A JSON-ready dict with keys `n_samples`, `accuracy`, `top_k_accuracy` ({k: value}, with
        `probs`), `macro_f1`, `weighted_f1`, `per_class` ({label: {precision, recall, f1,
        support}}), `labels`, `confusion_matrix`, `confused_pairs`.
    """
    if len(targets) != len(preds):
        raise ValueError(f"targets and preds differ in length: {len(targets)} vs {len(preds)}.")
    if probs is not None and np.shape(probs) != (len(targets), len(labels)):
        raise ValueError(f"probs must be {len(targets)} × {len(labels)}. Got "
                         f"{np.shape(probs)}.")
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
    top_k = ({str(k): top_k_accuracy(targets, probs, k) for k in TOP_KS if k < len(labels)}
             if probs is not None else {})
    return {
        "n_samples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "top_k_accuracy": top_k,
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
        "confused_pairs": confused_pairs(matrix, labels),
    }


def format_metrics(metrics: dict[str, Any]) -> str:
    """A readable table of `classification_metrics`' (or `multilabel_metrics`') result."""
    if metrics.get("task") == "multilabel":
        return format_multilabel_metrics(metrics)
    labels = metrics["labels"]
    width = max(12, *(len(label) for label in labels))
    lines = [
        f"samples {metrics['n_samples']}   accuracy {metrics['accuracy']:.4f}   "
        f"macro F1 {metrics['macro_f1']:.4f}   weighted F1 {metrics['weighted_f1']:.4f}",
    ]
    top_k = metrics.get("top_k_accuracy") or {}
    if top_k:
        lines.append("   ".join(f"top-{k} accuracy {v:.4f}" for k, v in top_k.items()))
    lines += [
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
    pairs = metrics.get("confused_pairs") or []
    if pairs:
        lines += ["", "most confused (true → predicted)"]
        lines += [f"  {p['true']} → {p['predicted']}: {p['count']} "
                  f"({p['share_of_true']:.1%} of {p['true']})" for p in pairs]
    return "\n".join(lines)


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under one label's precision-recall curve, as scikit-learn's
    `average_precision_score` computes it (steps at each distinct score)."""
    order = np.argsort(-scores, kind="stable")
    t, s = truth[order].astype(np.float64), scores[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the end of each group of equal scores
    tps, fps = np.cumsum(t)[last], np.cumsum(1 - t)[last]
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def multilabel_metrics(truth: np.ndarray, pred: np.ndarray, labels: Sequence[str],
                       probs: np.ndarray | None = None) -> dict[str, Any]:
    """Figures of label sets: micro and macro F1, per-label precision/recall/F1/support, mAP,
    exact-match ratio (also `accuracy`, as scikit-learn's `accuracy_score` on label sets) and
    Hamming loss.

    Macro F1 and mAP average over the labels that occur in `truth`, as `classification_metrics`
    does; precision (or recall) of a label without predictions (or samples) is 0.

    Args:
        truth: N × classes bool: the true label sets.
        pred: N × classes bool: the predicted label sets.
        labels: Class names.
        probs: N × classes probabilities, for mAP; omitted when None.
    """
    truth, pred = np.asarray(truth, bool), np.asarray(pred, bool)
    if truth.shape != pred.shape or truth.shape[1:] != (len(labels),):
        raise ValueError(f"truth and pred must both be N × {len(labels)}. Got {truth.shape} and "
                         f"{pred.shape}.")
    n = len(truth)
    tp = (truth & pred).sum(0).astype(np.float64)
    support = truth.sum(0).astype(np.float64)
    predicted = pred.sum(0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    denominator = support.sum() + predicted.sum()
    exact = float((truth == pred).all(1).mean()) if n else 0.0
    result = {
        "task": "multilabel",
        "n_samples": n,
        "accuracy": exact,
        "exact_match": exact,
        "hamming_loss": float((truth != pred).mean()) if n else 0.0,
        "micro_f1": float(2 * tp.sum() / denominator) if denominator else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
    }
    if probs is not None:
        aps = [average_precision(truth[:, j], np.asarray(probs)[:, j])
               for j in np.flatnonzero(present)]
        result["mAP"] = float(np.mean(aps)) if aps else 0.0
    return result


def format_multilabel_metrics(metrics: dict[str, Any]) -> str:
    """A readable table of `multilabel_metrics`' result."""
    labels = metrics["labels"]
    width = max(12, *(len(label) for label in labels))
    lines = [
        f"samples {metrics['n_samples']}   micro F1 {metrics['micro_f1']:.4f}   "
        f"macro F1 {metrics['macro_f1']:.4f}"
        + (f"   mAP {metrics['mAP']:.4f}" if "mAP" in metrics else ""),
        f"exact match {metrics['exact_match']:.4f}   Hamming loss {metrics['hamming_loss']:.4f}",
        "",
        f"{'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for label in labels:
        m = metrics["per_class"][label]
        lines.append(f"{label:<{width}} {m['precision']:>9.4f} {m['recall']:>9.4f} "
                     f"{m['f1']:>9.4f} {m['support']:>8d}")
    return "\n".join(lines)
