"""PNG plots of a run folder (the `plots` extra: matplotlib): loss and accuracy per epoch, and the
normalised confusion matrix of the held-out split.

    RUN/plots/curves.png      train and validation loss and accuracy per epoch
    RUN/plots/confusion.png   held-out confusion matrix, each row divided by its class's count
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

INSTALL = "pip install 'toolkit[plots]'"


def _drawable(labels: list[str]) -> list[str]:
    """The labels, or their indices when the plotting font lacks some of their characters
    (e.g. Chinese class names without a CJK font installed): numbers rather than empty boxes."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
    if all(font.get_char_index(ord(c)) for label in labels for c in label if not c.isspace()):
        return labels
    print("plots: the plotting font cannot draw some class names; the confusion matrix shows "
          f"class indices (0 = {labels[0]}, … in labels.json order)", file=sys.stderr)
    return [str(i) for i in range(len(labels))]


def write_run_plots(run_dir: str | Path) -> list[Path]:
    """Write the run's plots; without matplotlib, say in one line how to get them and return []."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print(f"plots skipped: matplotlib is not installed ({INSTALL} for PNG curves and a "
              "confusion matrix in the run folder)", file=sys.stderr)
        return []
    run_dir = Path(run_dir)
    folder = run_dir / "plots"
    folder.mkdir(exist_ok=True)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    epochs = [r["epoch"] for r in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, figure_name in zip(axes, ("loss", "accuracy"), strict=True):
        for split in ("train", "val"):
            values = [r[f"{split}_{figure_name}"] for r in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], marker="o",
                        label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(figure_name)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    curves = folder / "curves.png"
    figure.savefig(curves, dpi=100)
    plt.close(figure)

    results = json.loads((run_dir / "results.json").read_text())
    if "confusion_matrix" not in results:  # a multi-label run: label sets have no matrix
        return [curves]
    matrix = np.asarray(results["confusion_matrix"], dtype=np.float64)
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    labels = _drawable(results["labels"])
    size = max(4.0, 0.6 * len(labels) + 2)
    figure, ax = plt.subplots(figsize=(size, size))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{results['split']} split, {results['n_samples']} samples, accuracy "
                 f"{results['accuracy']:.3f}")
    for (i, j), value in np.ndenumerate(normalised):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center",
                color="white" if value > 0.5 else "black", fontsize=8)
    figure.tight_layout()
    confusion = folder / "confusion.png"
    figure.savefig(confusion, dpi=100)
    plt.close(figure)
    return [curves, confusion]
