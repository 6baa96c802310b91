"""`toolkit compare`: the figures of several runs and model files, side by side.

Without data, each target's recorded figures are shown: a run folder's (the training stack reads
them, `toolkit_deploy.plugins`), a model file's from its provenance (held-out figures of the run it
was exported from) with its parity. With data, every target is evaluated on the same labelled data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from toolkit_deploy.info import describe

COLUMNS = ("accuracy", "top-2", "macro_f1", "weighted_f1", "n_samples")


def model_figures(target: str | os.PathLike) -> dict[str, Any]:
    """The figures a model file carries, without evaluating anything."""
    info = describe(Path(target))
    figures = dict(info["provenance"].get("results") or {})
    if info["parity"]:
        figures["parity_top1_agreement"] = info["parity"]["top1_agreement"]
        figures["parity_max_abs_diff"] = info["parity"]["max_abs_diff"]
    return figures


def comparison_row(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """One row of the comparison: the headline figures and per-class F1 of one target."""
    row = {"target": name, **{c: figures.get(c) for c in COLUMNS if c != "top-2"}}
    row["top-2"] = (figures.get("top_k_accuracy") or {}).get("2")
    row["per_class_f1"] = {k: v["f1"] for k, v in (figures.get("per_class") or {}).items()}
    for key in ("split", "parity_top1_agreement", "parity_max_abs_diff", "n_failed"):
        if key in figures:
            row[key] = figures[key]
    return row


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """A table: one line per target, then per-class F1 when every target has it."""
    width = max(12, *(len(r["target"]) for r in rows))

    def cell(value: Any) -> str:
        if value is None:
            return f"{'–':>13}"
        return f"{value:>13.4f}" if isinstance(value, float) else f"{value:>13}"

    lines = [f"{'':<{width}}" + "".join(f"{c:>13}" for c in COLUMNS)]
    lines += [f"{r['target']:<{width}}" + "".join(cell(r[c]) for c in COLUMNS) for r in rows]
    classes = [set(r["per_class_f1"]) for r in rows]
    if all(classes) and all(c == classes[0] for c in classes):
        lines += ["", "F1 per class"]
        names = sorted(classes[0])
        lines.append(f"{'class':<{width}}" + "".join(f"{r['target'][-12:]:>13}" for r in rows))
        lines += [f"{label:<{width}}" + "".join(cell(r["per_class_f1"][label]) for r in rows)
                  for label in names]
    return "\n".join(lines)
