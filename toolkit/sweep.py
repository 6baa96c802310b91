"""`sweep`: train one recipe over a grid (or a random sample of it) of recipe values.

Every trial is an ordinary run folder `OUT/trial-NNN`; the trials run one after the other in this
process, so the decoded data of the first is reused by the others (`training.data`'s shared
cache). `OUT/sweep.json` holds the plan; a sweep started again with the same plan skips the
finished trials and resumes an interrupted one. The table, sorted by the validation figure the
recipe monitors, is written to `OUT/sweep.csv` and `OUT/sweep.json`, and `OUT/best` points to the
best trial.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from toolkit import run as runfile
from toolkit.recipe import MONITORS, load_recipe, parse_override
from toolkit.training.checkpoint import FILE as CHECKPOINT

PLAN = "sweep.json"


def split_values(text: str) -> list[str]:
    """`a,b,[1,2]` → ['a', 'b', '[1,2]']: commas inside brackets or quotes do not split."""
    values, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current)
            current = ""
            continue
        current += char
    values.append(current)
    return [v.strip() for v in values if v.strip()]


def parse_grid(grid: tuple[str, ...]) -> dict[str, list[Any]]:
    """`section.key=v1,v2` options → {section.key: [values]} (values read as TOML)."""
    axes: dict[str, list[Any]] = {}
    for text in grid:
        key, sep, raw = text.partition("=")
        if not sep or not split_values(raw):
            raise ValueError(f"--grid expects section.key=value1,value2,… Got {text!r}.")
        if key.strip() in axes:
            raise ValueError(f"--grid names {key.strip()} twice; give all its values at once.")
        axes[key.strip()] = [parse_override(f"{key}={v}")[1] for v in split_values(raw)]
    return axes


def plan_trials(axes: dict[str, list[Any]], random: int | None, seed: int) -> list[dict]:
    """Every combination of the axes, or `random` of them drawn without replacement."""
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    if random is not None:
        if random < 1:
            raise ValueError(f"--random must be >= 1. Got {random}.")
        picks = np.random.default_rng(seed).permutation(len(combos))[: min(random, len(combos))]
        combos = [combos[i] for i in sorted(picks)]
    return combos


def _validation_figure(path: Path, monitor: str) -> float | None:
    """The best value of `monitor` over the run's epochs."""
    rows = [json.loads(line) for line in (path / runfile.METRICS).read_text().splitlines()
            if line.strip()]
    values = [r[monitor] for r in rows if r.get(monitor) is not None]
    if not values:
        return None
    return max(values) if MONITORS[monitor] > 0 else min(values)


def sweep(recipe: str, data_dir: str | os.PathLike, out: str | os.PathLike,
          grid: tuple[str, ...], *, random: int | None = None, seed: int = 0,
          base: dict[str, Any] | None = None, device: str = "auto",
          progress: bool = True) -> list[dict[str, Any]]:
    """Train `recipe` once per trial of the grid; returns the table, best first.

    Args:
        recipe: A built-in recipe name or a recipe file.
        data_dir: The labelled data (as for `train`).
        out: The sweep folder.
        grid: `section.key=v1,v2` axes.
        random: Train this many combinations drawn at random (seeded by `seed`) instead of all.
        seed: Seed of the random draw.
        base: Overrides applied to every trial.
        device: As for `train`.
        progress: Progress bars and epoch lines.

    Raises:
        ValueError: A bad grid, or `out` holds a different sweep.
    """
    from toolkit.training.trainer import resume, train

    out, data_dir = Path(out), Path(data_dir).resolve()
    trials = plan_trials(parse_grid(grid), random, seed)
    # Trials are ranked on their validation figures, so none trains on its validation files
    # (train.merge_val would on small data); the base or the grid may still say otherwise.
    base = {"train.merge_val": "never", **(base or {})}
    for overrides in trials:  # every combination is a valid recipe before anything trains
        load_recipe(recipe, {**base, **overrides})
    plan = {"recipe": str(recipe), "data": str(data_dir), "base": base, "trials": trials}
    plan_path = out / PLAN
    if plan_path.is_file():
        previous = json.loads(plan_path.read_text(encoding="utf-8"))
        if {k: previous.get(k) for k in plan} != plan:
            raise ValueError(f"{out} holds a different sweep (recipe, data, base or grid "
                             "differ); choose another --out, or delete it.")
    elif out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not a sweep folder; choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    runfile.write_json(plan_path, plan)

    monitor = load_recipe(recipe, base).train.monitor
    rows = []
    for index, overrides in enumerate(trials):
        folder = out / f"trial-{index:03d}"
        info = folder / runfile.INFO
        finished = info.is_file() and json.loads(info.read_text()).get("finished")
        if not finished:
            if progress:
                print(f"trial {index + 1}/{len(trials)}: {overrides}", flush=True)
            if (folder / CHECKPOINT).is_file():
                resume(folder, data_dir=data_dir, device=device, progress=progress)
            else:
                train(load_recipe(recipe, {**base, **overrides}), data_dir, folder,
                      device=device, overwrite=True, progress=progress)
        results = json.loads((folder / runfile.RESULTS).read_text(encoding="utf-8"))
        rows.append({"trial": folder.name, **{k: overrides[k] for k in overrides},
                     monitor: _validation_figure(folder, monitor),
                     f"{results['split']}_accuracy": results["accuracy"],
                     "best_epoch": results["best_epoch"], "skipped": bool(finished)})
    sign = MONITORS[monitor]
    rows.sort(key=lambda r: (r[monitor] is None, -sign * (r[monitor] or 0.0), r["trial"]))
    _write_table(out, rows)
    best = out / "best"
    if best.is_symlink() or best.exists():
        best.unlink()
    best.symlink_to(rows[0]["trial"], target_is_directory=True)
    plan["table"] = rows
    runfile.write_json(plan_path, plan)
    return rows


def _write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    tmp = out / "sweep.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: json.dumps(v) if isinstance(v, (list, tuple)) else v
                           for k, v in r.items()} for r in rows])
    os.replace(tmp, out / "sweep.csv")


def format_table(rows: list[dict[str, Any]]) -> str:
    """The sweep table for people, best first."""
    fields = [k for k in rows[0] if k != "skipped"]

    def text(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    widths = {f: max(len(f), *(len(text(r.get(f))) for r in rows)) for f in fields}
    lines = ["  ".join(f"{f:>{widths[f]}}" for f in fields)]
    lines += ["  ".join(f"{text(r.get(f)):>{widths[f]}}" for f in fields) for r in rows]
    return "\n".join(lines)
