"""How well `toolkit score` overlaps decoding with inference, as ratios measured in one run.

Times, on the same files and the same model: decoding alone (the scorer's thread pool), inference
alone (pre-decoded batches), and `score` end to end. With perfect overlap the end-to-end rate
equals the slower of the two stages, so `end_to_end / slower_stage` near 1.0 is the target; the
machine is shared and noisy, so only ratios within one run are meaningful.

    python benchmarks/score.py --model demo/model.onnx --files 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from toolkit_deploy.files import list_files
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.session import available_cores


def best_of(repeats: int, fn) -> float:
    """Best wall time of `repeats` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A toolkit image model (.onnx).")
    parser.add_argument("--files", type=int, default=2000, help="Shapes images to generate.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from toolkit.data.shapes import SHAPE_CLASSES, make_shapes

    predictor = Predictor(args.model)
    workers = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_shapes(data, per_class=max(1, args.files // len(SHAPE_CLASSES)), seed=123)
        paths = list(list_files(data, predictor.decoder.extensions).files)
        n = len(paths)
        with ThreadPoolExecutor(workers) as pool:
            decode = best_of(args.repeats, lambda: list(pool.map(predictor.decode, paths)))
        arrays = np.stack([predictor.decode(p) for p in paths])
        bs = args.batch_size
        infer, end_to_end = time_inference_and_scoring(predictor, arrays, data,
                                                       Path(tmp) / "p.csv", bs, args.repeats)

    rate = {k: n / t for k, t in [("decode", decode), ("infer", infer), ("score", end_to_end)]}
    slower = min(rate["decode"], rate["infer"])
    print(f"{n} files, batch {bs}, {workers} cores, best of {args.repeats}")
    print(f"decode alone      {rate['decode']:8.1f} files/s")
    print(f"inference alone   {rate['infer']:8.1f} files/s")
    print(f"score end to end  {rate['score']:8.1f} files/s")
    print(f"end_to_end / slower stage = {rate['score'] / slower:.2f}   (1.0 = perfect overlap)")
    print_ratios(rate, "decode", "decoding", "decode")


if __name__ == "__main__":
    main()
