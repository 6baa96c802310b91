"""Files per second of `toolkit score` on images against the ways users score without it, as
ratios measured in one run.

On the same 256 × 256 PNG files and the same model (the image-cnn recipe's, 64 × 64 input):

    (a) a naive loop: one ONNX Runtime session, one file at a time (decode, run at batch 1)
    (b) decoding alone, with all cores (the scorer's threads, one batch of files per task)
    (c) inference alone, on pre-decoded arrays, with all cores
    (d) `toolkit score` end to end (the Python API, writing a CSV table and its summary)
    (e) the PyTorch way (timm's inference.py): a DataLoader with one worker process per core
        decoding with PIL + numpy, the run's PyTorch model in eager mode, batch 32, rows to CSV
    (f) the Ray engine (`score(..., engine="ray")`) on a local Ray with 2 CPUs

On a CPU-only machine decoding and inference share the cores, so the limit for (d) is
1 / (1/b + 1/c). Targets: d >= 0.85 x limit, d >= 1.25 x a, d >= 1.5 x e, f >= 0.4 x d.
(a)-(e) are timed in interleaved rounds (one of each per round, best of the rounds), then Ray is
started and (f) alternates with (d) again, so that Ray's idle processes never weigh on (a)-(e)
and f / d compares two runs made side by side. The machine is shared: trust the ratios.

Without --run, the image-cnn recipe is trained for a few epochs on `shapes` demo data and
exported, and the images generated (about 1.5 minutes; speed does not depend on accuracy).

    python benchmarks/score.py
    python benchmarks/score.py --run RUN --model model.onnx     # reuse a run and its export
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.files import list_files
from toolkit_deploy.pipeline import decode_chunk
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.session import available_cores

TARGETS = {"d / limit": 0.85, "d / a": 1.25, "d / e": 1.5, "f / d": 0.4}


def best_of(repeats: int, fn) -> float:
    """Best wall time of `repeats` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved_best(repeats: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best wall time of each of `fns`, timed in `repeats` rounds that call each one once, so
    that a burst of other load hits every measurement alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def time_inference_and_scoring(predictor: Predictor, batch: np.ndarray, inputs: Path, out: Path,
                               batch_size: int, repeats: int) -> tuple[float, float]:
    """Best seconds of running the decoded `batch` in `batch_size` slices, and of `score` on
    `inputs` end to end."""
    infer = best_of(repeats, lambda: [predictor.run(batch[i : i + batch_size])
                                      for i in range(0, len(batch), batch_size)])
    end_to_end = best_of(repeats, lambda: score(predictor, inputs, out, batch_size=batch_size,
                                                overwrite=True, progress=False))
    return infer, end_to_end


def print_ratios(rate: dict[str, float], stage: str, name: str, verb: str) -> None:
    """End-to-end rate against the decoding stage (`rate[stage]`, called `name`), inference and
    both in series."""
    serial = 1 / (1 / rate[stage] + 1 / rate["infer"])
    width = max(len(name), len("inference")) + 13
    print(f"{'end_to_end / ' + name:<{width}} = {rate['score'] / rate[stage]:.2f}")
    print(f"{'end_to_end / inference':<{width}} = {rate['score'] / rate['infer']:.2f}")
    print(f"end_to_end / serial ({verb} then infer) = {rate['score'] / serial:.2f}")


def demo_run(folder: Path, kind: str, recipe: str, per_class: int,
             overrides: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Train `recipe` on `per_class` files per class of the `kind` demo data (seed 0) under
    `folder`, and export it: (run folder, model). Every benchmark that needs a model uses this."""
    from toolkit.demo import make_dataset
    from toolkit.export.onnx_export import export_run
    from toolkit.recipe import load_recipe
    from toolkit.training.trainer import train

    make_dataset(kind, folder / "data", per_class=per_class, seed=0)
    run = train(load_recipe(recipe, overrides or {}), folder / "data", folder / "run",
                device="cpu", progress=False)
    return run.path, export_run(run, folder / "model.onnx").path


def write_images(folder: Path, n: int, side: int = 256, seed: int = 123) -> list[Path]:
    """`n` PNG files of side × side pixels: `shapes` demo images scaled up, with pixel noise so
    that they compress like photographs rather than flat drawings."""
    from PIL import Image

    from toolkit.demo.shapes import SHAPE_CLASSES, make_shapes

    small = folder.with_name(folder.name + "-small")
    make_shapes(small, per_class=-(-n // len(SHAPE_CLASSES)), seed=seed)
    sources = sorted(small.rglob("*.png"))[:n]

    def enlarge(i: int) -> Path:
        rng = np.random.default_rng(seed + i)
        image = Image.open(sources[i]).convert("RGB").resize((side, side), Image.BICUBIC)
        pixels = np.asarray(image, np.float32) + rng.normal(0, 6, (side, side, 3))
        path = folder / sources[i].parent.name / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8)).save(path)
        return path

    with ThreadPoolExecutor(available_cores()) as pool:
        return sorted(pool.map(enlarge, range(len(sources))))


def naive_loop(predictor: Predictor, paths: list[Path], out: Path) -> None:
    """(a): decode one file, run it at batch 1, write its row; the next file."""
    labels = predictor.labels
    with open(out, "w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(["path", "label", "score"])
        for path in paths:
            p = predictor.run(predictor.decode(path)[None])[1][0]
            rows.writerow([path.name, labels[int(p.argmax())], float(p.max())])


def torch_way(run: Path, paths: list[Path], out: Path, workers: int,
              batch_size: int = 32) -> None:
    """(e): timm's inference.py, on the run's PyTorch model (uint8 N×H×W×C in; it scales and
    normalises itself, like the exported graph)."""
    import torch
    from PIL import Image

    from toolkit.run import load_run

    loaded = load_run(run)
    model, spec = loaded.load_model(), loaded.preprocess()
    side = (spec.width, spec.height)

    class Files(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int):
            image = Image.open(paths[i]).convert("RGB")
            scale = max(side[0] / image.width, side[1] / image.height)  # resize, centre crop
            size = (max(side[0], round(image.width * scale)),
                    max(side[1], round(image.height * scale)))
            image = image.resize(size, Image.BILINEAR)
            left, top = (size[0] - side[0]) // 2, (size[1] - side[1]) // 2
            image = image.crop((left, top, left + side[0], top + side[1]))
            return torch.from_numpy(np.asarray(image, np.uint8).copy()), i

    loader = torch.utils.data.DataLoader(Files(), batch_size=batch_size, num_workers=workers)
    with open(out, "w", newline="") as f, torch.no_grad():
        rows = csv.writer(f)
        rows.writerow(["path", "label", "score"])
        for batch, index in loader:
            top = torch.softmax(model(batch), dim=1).max(dim=1)
            for i, s, k in zip(index.tolist(), top.values.tolist(), top.indices.tolist(),
                               strict=True):
                rows.writerow([paths[i].name, loaded.labels[k], s])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="A trained image run folder; default: train one.")
    parser.add_argument("--model", help="The run's exported model (.onnx); default: export it.")
    parser.add_argument("--files", type=int, default=2000, help="Images to generate.")
    parser.add_argument("--side", type=int, default=256, help="Their width and height.")
    parser.add_argument("--epochs", type=int, default=3, help="Epochs of the demo training.")
    parser.add_argument("--repeats", type=int, default=3, help="Interleaved rounds.")
    parser.add_argument("--no-ray", action="store_true", help="Skip (f).")
    args = parser.parse_args()
    if args.model and not args.run:
        parser.error("--model needs --run (the PyTorch model of (e) is the run's).")

    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.run is None:
            t0 = time.perf_counter()
            run, model = demo_run(tmp / "demo", "shapes", "image-cnn", 60,
                                  {"train.epochs": args.epochs})
            print(f"trained and exported the demo model in {time.perf_counter() - t0:.0f} s")
        else:
            from toolkit.export.onnx_export import export_run

            run = Path(args.run)
            model = Path(args.model) if args.model else export_run(run, tmp / "model.onnx").path
        predictor = Predictor(model)
        write_images(tmp / "images", args.files, args.side)
        paths = list(list_files(tmp / "images", predictor.decoder.extensions).files)
        n, bs = len(paths), 32
        chunks = [paths[i : i + bs] for i in range(0, n, bs)]
        arrays = np.stack([predictor.decode(p) for p in paths])
        out = tmp / "p.csv"
        with ThreadPoolExecutor(cores) as pool:
            seconds = interleaved_best(args.repeats, {
                "a": lambda: naive_loop(predictor, paths, out),
                "b": lambda: list(pool.map(lambda c: decode_chunk(predictor.decoder, c),
                                           chunks)),
                "c": lambda: [predictor.run(arrays[i : i + bs]) for i in range(0, n, bs)],
                "d": lambda: score(predictor, tmp / "images", out, overwrite=True,
                                   progress=False),
                "e": lambda: torch_way(run, paths, out, cores, bs),
            })
        rate = {k: n / s for k, s in seconds.items()}
        if not args.no_ray:
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            side_by_side = interleaved_best(args.repeats, {
                "d (beside f)": lambda: score(predictor, tmp / "images", out, overwrite=True,
                                              progress=False),
                "f": lambda: score(predictor, tmp / "images", out, overwrite=True,
                                   progress=False, engine="ray"),
            })
            ray.shutdown()
            rate.update({k: n / s for k, s in side_by_side.items()})

    limit = 1 / (1 / rate["b"] + 1 / rate["c"])
    print(f"{n} PNG files of {args.side}×{args.side}, {model.name} "
          f"(input {'×'.join(map(str, predictor.spec.input_spec['shape'][1:]))}), {cores} cores, "
          f"best of {args.repeats} interleaved rounds")
    names = {"a": "naive loop (batch 1, one file at a time)", "b": "decoding alone, all cores",
             "c": "inference alone, all cores", "d": "toolkit score end to end",
             "e": f"PyTorch DataLoader ({cores} workers) + eager model",
             "f": "Ray engine (local Ray, 2 CPUs)", "d (beside f)": "toolkit score, beside (f)"}
    for key, name in names.items():
        if key in rate:
            print(f"({key[0]}) {name:<42} {rate[key]:8.1f} files/s"
                  + ("   [second round, with Ray up]" if key == "d (beside f)" else ""))
    print(f"limit 1 / (1/b + 1/c) {'':<24} {limit:8.1f} files/s")
    ratios = {"d / limit": rate["d"] / limit, "d / a": rate["d"] / rate["a"],
              "d / e": rate["d"] / rate["e"]}
    if "f" in rate:
        ratios["f / d"] = rate["f"] / rate["d (beside f)"]
    for name, value in ratios.items():
        verdict = "met" if value >= TARGETS[name] else "MISSED"
        print(f"{name:<10} = {value:5.2f}   target >= {TARGETS[name]:.2f}   {verdict}")


if __name__ == "__main__":
    main()
