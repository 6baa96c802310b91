"""FP32 against INT8 and the optimised graph for every built-in recipe, in one run: throughput at
batch 1 and 64, held-out accuracy, and their ratios to FP32.

For each recipe a run is trained briefly on its demo data (speed does not depend on accuracy, but
the accuracy drop needs a model that has learnt something), then exported with `toolkit export`'s
code: FP32, `--quantize int8`, `--optimize` and `--fp16`. INT8 goes through its gates (accuracy
drop <= 1 point, faster than FP32 at batch 32); when they refuse it, the same INT8 graph is built
without them (`toolkit.export.int8.quantize_int8`) so that its figures can still be shown, and the
table says it was refused. Throughputs are best-of runs that alternate between the files, with the
runtime's own session settings; the optimised graph computes what FP32 computes, so its ratio shows
the noise. FP16 is for GPUs: a second table gives its parity with PyTorch (the evidence for its
tolerances) and how many of its operators the CPU provider really ran in float16. The machine is
shared and noisy: only ratios within one run are meaningful.

    python benchmarks/quantize.py
    python benchmarks/quantize.py --recipes image-cnn --per-class 300 --budget 4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from toolkit.demo import make_dataset
from toolkit.export.int8 import learnt_names, quantize_int8
from toolkit.export.onnx_export import export_run
from toolkit.export.samples import calibration_samples, held_out_samples
from toolkit.export.variants import Variant, throughputs
from toolkit.recipe import load_recipe
from toolkit.run import Run
from toolkit.training.trainer import train
from toolkit_deploy.errors import ParityError
from toolkit_deploy.pipeline import predict_arrays
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.session import available_cores

#: recipe → (demo data kind, samples per class, brief training overrides)
CASES = {
    "image-cnn": ("shapes", 200, {"train.epochs": 12}),
    "text-bag": ("text", 150, {"train.epochs": 6}),
    "text-encoder": ("text", 150, {"train.epochs": 4}),
    "audio-cnn": ("sounds", 40, {"train.epochs": 8}),
    "video-cnn": ("motion", 40, {"train.epochs": 10}),
}


def trained_run(name: str, folder: Path, per_class: int | None) -> Run:
    kind, default_per_class, sets = CASES[name]
    data = folder / "data" / kind
    if not data.exists():
        make_dataset(kind, data, per_class=per_class or default_per_class, seed=0)
    return train(load_recipe(name, sets), data, folder / name / "run", device="cpu",
                 progress=False)


def int8_without_gates(run: Run, fp32: Path, out: Path) -> None:
    """The INT8 graph `--quantize int8` builds, written without its gates (for the figures)."""
    import onnx

    predictor = Predictor(fp32)
    samples = calibration_samples(run, run.data_dir)
    arrays = [predictor.decode(s) for s in samples.sources]
    windowed = getattr(predictor.decoder, "windowed", False)
    calibration = np.concatenate(arrays) if windowed else np.stack(arrays)
    work = out.parent / "int8-work"
    work.mkdir()
    graph, *_ = quantize_int8(onnx.load(fp32), learnt_names(run.load_model()),
                              calibration[:256], work)
    onnx.helper.set_model_props(graph, predictor.spec.to_metadata())
    onnx.save_model(graph, out)


def accuracy(predictor: Predictor, arrays: list[np.ndarray], targets: list[int]) -> float:
    probs = np.concatenate([predict_arrays(predictor, arrays[i : i + 64])
                            for i in range(0, len(arrays), 64)])
    return float((probs.argmax(1) == np.asarray(targets)).mean())


def measure(name: str, folder: Path, per_class: int | None, budget: float) -> list[dict]:
    t0 = time.perf_counter()
    run = trained_run(name, folder, per_class)
    trained_s = time.perf_counter() - t0
    out = folder / name
    files = {"fp32": export_run(run, out / "fp32.onnx").path}
    verdict = {"fp32": "proven"}
    try:
        files["int8"] = export_run(run, out / "int8.onnx",
                                   variant=Variant(quantize="int8")).path
        verdict["int8"] = "written"
    except ParityError as e:
        failed = [f.split(" (")[0] for f in e.report.failures]
        verdict["int8"] = "REFUSED: " + "; ".join(failed)
        int8_without_gates(run, files["fp32"], out / "int8.onnx")
        files["int8"] = out / "int8.onnx"
    files["optimized"] = export_run(run, out / "optimized.onnx",
                                    variant=Variant(optimize=True)).path
    verdict["optimized"] = "written"
    # FP16 is for GPUs: only its parity with PyTorch (the tolerances' evidence) is measured here.
    fp16 = export_run(run, out / "fp16.onnx", variant=Variant(fp16=True))
    predictors = {k: Predictor(p) for k, p in files.items()}

    held_out = held_out_samples(run, run.data_dir, 10**9)
    reference = predictors["fp32"]
    arrays = [reference.decode(s) for s in held_out.sources]
    windowed = getattr(reference.decoder, "windowed", False)
    inputs = np.concatenate(arrays) if windowed else np.stack(arrays)
    rates = {}
    for batch_size in (1, 64):
        batch = np.resize(inputs, (batch_size, *inputs.shape[1:]))
        measured = throughputs(list(predictors.values()), batch, budget_s=budget)
        rates[batch_size] = dict(zip(predictors, measured, strict=True))
    rows = []
    for kind, predictor in predictors.items():
        rows.append({
            "recipe": name, "variant": kind, "gates": verdict[kind],
            "accuracy": accuracy(predictor, arrays, list(held_out.targets)),
            "n": len(arrays), "b1": rates[1][kind], "b64": rates[64][kind],
            "x_b1": rates[1][kind] / rates[1]["fp32"],
            "x_b64": rates[64][kind] / rates[64]["fp32"],
            "size": files[kind].stat().st_size, "trained_s": trained_s,
            "fp16": fp16.report, "fp16_ops": fp16.variant.float16_ops,
        })
    fp32 = rows[0]["accuracy"]
    for row in rows:
        row["drop"] = 100 * (fp32 - row["accuracy"])
    return rows


def print_table(rows: list[dict]) -> None:
    print("| recipe | variant | held-out acc. (n) | Δ points | batch 1 /s | ×FP32 | batch 64 /s "
          "| ×FP32 | file KiB | gates |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['recipe']} | {r['variant']} | {r['accuracy']:.3f} ({r['n']}) | "
              f"{0.0 - r['drop']:+.1f} | {r['b1']:.0f} | {r['x_b1']:.2f} | {r['b64']:.0f} | "
              f"{r['x_b64']:.2f} | {r['size'] / 1024:.0f} | {r['gates']} |")


def print_fp16(rows: list[dict]) -> None:
    print("\n| recipe | FP16 vs PyTorch: max abs Δlogit | max rel. Δlogit | max abs Δprob | "
          "top-1 agreement | float16 operators run in float16 on this CPU |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if r["variant"] != "fp32":
            continue
        p = r["fp16"]
        ran, total = r["fp16_ops"]
        print(f"| {r['recipe']} | {p.max_abs_diff:.2e} | {p.max_rel_diff:.2e} | "
              f"{p.max_prob_diff:.2e} | {p.top1_agreement:.4f} | {ran} of {total} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--per-class", type=int, default=None,
                        help="Demo samples per class (default: per recipe, see CASES).")
    parser.add_argument("--budget", type=float, default=3.0,
                        help="Seconds of alternating timing per batch size and recipe.")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            rows += measure(name, Path(tmp), args.per_class, args.budget)
            print(f"{name}: done at {time.perf_counter() - start:.0f} s", flush=True)
    print(f"\n{available_cores()} cores; throughput in model inputs per second (audio: 1 s "
          "windows), best of alternating runs; accuracy on each run's held-out split "
          "(text: as written)\n")
    print_table(rows)
    print_fp16(rows)


if __name__ == "__main__":
    main()
