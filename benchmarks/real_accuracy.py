"""Test accuracy of every built-in recipe, with its defaults and no flags, against the strongest
classic baseline of its modality, on the real corpora of `benchmarks/corpora/`.

For every corpus, training-set size (all the training files, or N per class drawn with the seed)
and seed: the baseline (`baselines.py`, scikit-learn with C chosen by CV on the training files)
and every built-in recipe of the corpus's modality (`toolkit.train` with only `train.seed` set)
learn from the same training files and are scored on the corpus's whole test split. Each result
is one line of `--results` (JSONL), so an interrupted benchmark continues where it stopped; the
table is printed from that file. `--export` also exports the first seed's runs at every size
with proven parity and evaluates the ONNX file with the runtime.

    python benchmarks/corpora/build.py /tmp/corpora
    python benchmarks/real_accuracy.py /tmp/corpora --results real.jsonl
    python benchmarks/real_accuracy.py /tmp/corpora --only man-en --sizes 20 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # baselines.py beside this file

import baselines  # noqa: E402

from toolkit.recipe import builtin_recipes, load_recipe  # noqa: E402


def recipes_of(modality: str) -> list[str]:
    return sorted(n for n in builtin_recipes() if load_recipe(n).modality == modality)


def subset(corpus: Path, size: str, seed: int, out: Path) -> Path:
    """`out/train` with `size` files per class (all when `full`) drawn with `seed`, and
    `out/test` with every test file (hard links, so nothing is copied)."""
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        for folder in sorted(p for p in (corpus / split).iterdir() if p.is_dir()):
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            if split == "train" and size != "full":
                files = [files[i] for i in sorted(rng.permutation(len(files))[:int(size)])]
            for path in files:
                target = out / split / folder.name / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(path, target)
    return out


def run_recipe(name: str, data: Path, out: Path, seed: int, export: bool) -> dict:
    from toolkit.training.trainer import train

    started = time.perf_counter()
    run = train(load_recipe(name, {"train.seed": seed}), data, out, device="cpu", progress=False)
    seconds = time.perf_counter() - started
    results = json.loads((run.path / "results.json").read_text(encoding="utf-8"))
    row = {"accuracy": results["accuracy"], "seconds": round(seconds, 1),
           "auto": {k: v["value"] for k, v in run.info["auto"].items()},
           "best_epoch": run.info["best_epoch"], "epochs_run": run.info["epochs_run"]}
    if export:
        from toolkit.export.onnx_export import export_run
        from toolkit_deploy.evaluate import evaluate

        model = out.with_suffix(".onnx")
        report = export_run(run.path, model).report
        row["parity"] = {k: getattr(report, k) for k in ("passed", "max_abs_diff",
                                                         "top1_agreement", "n_samples")}
        row["onnx_accuracy"] = evaluate(model, data / "test")["accuracy"]
    return row


def baseline_row(modality: str, data: Path) -> dict:
    """The baseline on the inputs the modality's first recipe would decode (its `auto` keys
    resolved on this training split, as `toolkit train` resolves them)."""
    from toolkit.training.auto import resolve_auto
    from toolkit.training.data import make_split
    from toolkit_deploy.decoders import decoder_extensions

    recipe = load_recipe(recipes_of(modality)[0])
    d = recipe.data
    split = make_split(data, decoder_extensions(modality), d.val_fraction, d.test_fraction, 0, d)
    d = resolve_auto(recipe, split, data)[0].data
    train, test = data / "train", data / "test"
    if modality == "text":
        result = baselines.text_baseline(train, test)
    elif modality == "image":
        result = baselines.image_baseline(train, test, d.image_size, d.channels)
    elif modality == "audio":
        result = baselines.audio_baseline(train, test)
    else:
        result = baselines.video_baseline(train, test, d.frames, d.image_size)
    return {"accuracy": result.accuracy, "features": result.features, "C": result.c,
            "seconds": round(result.seconds, 1)}


def measure(corpora: Path, names: list[str], sizes: list[str], seeds: list[int],
            results: Path, export: bool, only_models: set[str] | None = None) -> None:
    done = set()
    if results.exists():
        for line in results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done.add((row["corpus"], row["size"], row["seed"], row["model"]))
    for name in names:
        info = json.loads((corpora / name / "corpus.json").read_text(encoding="utf-8"))
        models = [m for m in ["baseline", *recipes_of(info["modality"])]
                  if only_models is None or m in only_models]
        for size in sizes:
            for seed in seeds:
                todo = [m for m in models if (name, size, seed, m) not in done]
                if not todo:
                    continue
                with tempfile.TemporaryDirectory(dir=results.parent) as tmp:
                    data = subset(corpora / name, size, seed, Path(tmp) / "data")
                    for model in todo:
                        row = (baseline_row(info["modality"], data) if model == "baseline" else
                               run_recipe(model, data, Path(tmp) / model, seed,
                                          export and seed == seeds[0]))
                        _append(results, name, size, seed, model, row)


def _append(results: Path, corpus: str, size: str, seed: int, model: str, row: dict) -> None:
    line = {"corpus": corpus, "size": size, "seed": seed, "model": model, **row}
    with open(results, "a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), file=sys.stderr, flush=True)


def table(results: Path) -> str:
    """Markdown: one line per corpus and size; mean test accuracy over seeds (± sd), seconds."""
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        groups.setdefault((row["corpus"], row["size"]), {}).setdefault(row["model"], []).append(row)
    lines = ["| corpus | train files / class | seeds | baseline (features) | recipe | recipe "
             "accuracy | Δ points | train s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (corpus, size), models in groups.items():
        base = models.get("baseline", [])
        base_acc = statistics.mean(r["accuracy"] for r in base) if base else float("nan")
        features = ", ".join(sorted({r["features"] for r in base}))
        for model, runs in sorted(models.items()):
            if model == "baseline":
                continue
            accs = [r["accuracy"] for r in runs]
            mean = statistics.mean(accs)
            sd = statistics.pstdev(accs) if len(accs) > 1 else 0.0
            seconds = statistics.mean(r["seconds"] for r in runs)
            lines.append(f"| {corpus} | {size} | {len(runs)} | {base_acc:.3f} ({features}) | "
                         f"{model} | {mean:.3f} ± {sd:.3f} | {100 * (mean - base_acc):+.1f} | "
                         f"{seconds:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", type=Path, help="The folder benchmarks/corpora/build.py made.")
    parser.add_argument("--only", help="Comma-separated corpora (default: every one there).")
    parser.add_argument("--sizes", default="full,50,20",
                        help="Training files per class, comma-separated; full = all of them.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--results", type=Path, default=Path("real_accuracy.jsonl"))
    parser.add_argument("--export", action="store_true",
                        help="Export the first seed's runs (parity) and evaluate them torch-free.")
    parser.add_argument("--models", help="Comma-separated recipes (and `baseline`) to run "
                        "(default: the baseline and every built-in recipe of the modality).")
    parser.add_argument("--table", action="store_true", help="Only print the table.")
    args = parser.parse_args()
    if not args.table:
        names = (args.only.split(",") if args.only else
                 sorted(p.name for p in args.corpora.iterdir() if (p / "corpus.json").exists()))
        args.results.parent.mkdir(parents=True, exist_ok=True)
        measure(args.corpora, names, args.sizes.split(","),
                [int(s) for s in args.seeds.split(",")], args.results.resolve(), args.export,
                set(args.models.split(",")) if args.models else None)
    print(table(args.results))


if __name__ == "__main__":
    main()
