"""Which `--batch-size`, `--workers` and `--threads` make `toolkit score` fastest, per modality, on
this machine: a grid of the three, scored on the same inputs with the demo-sized models.

Every configuration runs once per round, in a new shuffled order each round. Each is ranked by
the median, over the rounds, of its speed relative to the defaults (the three options left
unset, as `score` resolves them) in the same round: both runs of a round share that round's load,
so the ratio is steadier than either figure. Best and median files/s are printed beside it. The
defaults themselves appear once more as an explicit configuration (e.g. 32 2 2 on 2 cores): how
far its ratio is from 1.00 shows the noise.

Models are trained from the demo data with the recipes (a few epochs: speed does not depend on
accuracy) and the inputs generated, once, under --work; later runs reuse them.

    python benchmarks/defaults.py --work /tmp/toolkit-defaults
    python benchmarks/defaults.py --work /tmp/toolkit-defaults --only image-256 --repeats 5
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from score import demo_run  # benchmarks/score.py: this folder is on sys.path when run

from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.session import available_cores


@dataclass(frozen=True)
class Case:
    """One modality's inputs and grid.

    Attributes:
        name: Row label.
        make: Writes the model and inputs under a folder: (model file, INPUT of `score`).
        batch_sizes: Grid of --batch-size.
        workers: Grid of --workers.
        threads: Grid of --threads.
    """

    name: str
    make: Callable[[Path], tuple[Path, Path]]
    batch_sizes: tuple[int, ...]
    workers: tuple[int, ...]
    threads: tuple[int, ...]


def _train(kind: str, recipe: str, folder: Path, per_class: int, epochs: int) -> Path:
    return demo_run(folder, kind, recipe, per_class, {"train.epochs": epochs})[1]


def _images(side: int, n: int) -> Callable[[Path], tuple[Path, Path]]:
    def make(folder: Path) -> tuple[Path, Path]:
        from score import write_images  # benchmarks/score.py: this folder is on sys.path

        model = _train("shapes", "image-cnn", folder / "model", 60, 3)
        write_images(folder / "inputs", n, side)
        return model, folder / "inputs"

    return make


def _texts(n: int) -> Callable[[Path], tuple[Path, Path]]:
    def make(folder: Path) -> tuple[Path, Path]:
        from toolkit.demo import make_dataset

        model = _train("text", "text-bag", folder / "model", 300, 5)
        make_dataset("text", folder / "fresh", per_class=-(-n // 4), seed=7)
        texts = [" ".join(p.read_text("utf-8-sig").split())
                 for p in sorted((folder / "fresh").rglob("*.txt"))][:n]
        lines = folder / "texts.txt"
        lines.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        return model, lines

    return make


def _clips(n: int) -> Callable[[Path], tuple[Path, Path]]:
    def make(folder: Path) -> tuple[Path, Path]:
        from audio import write_clips  # benchmarks/audio.py

        model = _train("sounds", "audio-cnn", folder / "model", 40, 2)
        write_clips(folder / "inputs", n)
        return model, folder / "inputs"

    return make


def _videos(n: int) -> Callable[[Path], tuple[Path, Path]]:
    def make(folder: Path) -> tuple[Path, Path]:
        from toolkit.demo import make_dataset

        model = _train("motion", "video-cnn", folder / "model", 20, 2)
        make_dataset("motion", folder / "inputs", per_class=-(-n // 4), seed=9)
        return model, folder / "inputs"

    return make


CASES = {
    "image-256": Case("image, 256×256 PNG → 64×64 model", _images(256, 1000), (8, 32, 64, 128),
                      (1, 2, 3), (1, 2)),
    "image-64": Case("image, 64×64 PNG → 64×64 model", _images(64, 2000), (8, 32, 64, 128),
                     (1, 2, 3), (1, 2)),
    "text": Case("text, 10,000 short texts (text-bag)", _texts(10000), (32, 64, 128, 256),
                 (1, 2), (1, 2)),
    "audio": Case("audio, 500 one-second WAV clips", _clips(500), (8, 32, 64), (1, 2, 3),
                  (1, 2)),
    "video": Case("video, 300 motion clips", _videos(300), (8, 32), (1, 2, 3), (1, 2)),
}


def prepare(case: Case, folder: Path) -> tuple[Path, Path]:
    """The case's model and inputs under `folder`, made on first use."""
    done = folder / "made.txt"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted first run left
        folder.mkdir(parents=True)
        t0 = time.perf_counter()
        model, inputs = case.make(folder)
        done.write_text(f"{model}\n{inputs}\n")
        print(f"  made the model and inputs in {time.perf_counter() - t0:.0f} s")
    model, inputs = done.read_text().split("\n")[:2]
    return Path(model), Path(inputs)


def measure(case: Case, model: Path, inputs: Path, out: Path, repeats: int,
            seed: int = 0) -> tuple[int, dict[tuple[int | None, ...], list[float]]]:
    """Seconds of each (batch_size, workers, threads) of the grid, and of the defaults
    (None, None, None), in each of `repeats` shuffled rounds; and the number of inputs."""
    sessions = {t: Predictor(model, threads=t) for t in (*case.threads, None)}
    grid = [*itertools.product(case.batch_sizes, case.workers, case.threads),
            (None, None, None)]
    seconds: dict[tuple[int | None, ...], list[float]] = {config: [] for config in grid}
    order = random.Random(seed)
    n = 0
    for _ in range(repeats):
        order.shuffle(grid)
        for config in grid:
            batch_size, workers, threads = config
            given = {k: v for k, v in [("batch_size", batch_size), ("workers", workers)]
                     if v is not None}  # left out, as a user who does not give them
            t0 = time.perf_counter()
            summary = score(sessions[threads], inputs, out, overwrite=True, progress=False,
                            **given)
            seconds[config].append(time.perf_counter() - t0)
            n = summary.n_files
    return n, seconds


def report(case: Case, n: int, seconds: dict[tuple[int | None, ...], list[float]]) -> None:
    """One line per configuration, fastest first by the median of its per-round ratios to the
    defaults (a ratio within a round shares that round's load, so it is steadier than either
    time); the best and median rates beside it."""
    default = seconds[(None, None, None)]
    ratios = {config: statistics.median(d / t for d, t in zip(default, times, strict=True))
              for config, times in seconds.items()}
    print(f"{case.name}: {n} inputs, {len(default)} rounds")
    print("    batch  workers  threads   best/s   median/s   vs default (median ratio)")
    for config in sorted(seconds, key=lambda c: -ratios[c]):
        shown = ["default" if v is None else str(v) for v in config]
        times = seconds[config]
        print(f"  {shown[0]:>7} {shown[1]:>8} {shown[2]:>8} {n / min(times):8.1f} "
              f"{n / statistics.median(times):10.1f}   {ratios[config]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="Folder for the models and inputs "
                        "(made on first use, reused after).")
    parser.add_argument("--only", action="append", choices=sorted(CASES),
                        help="Measure only these cases (repeatable); default: all.")
    parser.add_argument("--repeats", type=int, default=3, help="Shuffled rounds.")
    args = parser.parse_args()

    print(f"{available_cores()} cores available")
    for key in args.only or list(CASES):
        case = CASES[key]
        folder = Path(args.work) / key
        print(f"[{key}]")
        model, inputs = prepare(case, folder)
        n, best = measure(case, model, inputs, folder / "p.csv", args.repeats)
        report(case, n, best)


if __name__ == "__main__":
    main()
