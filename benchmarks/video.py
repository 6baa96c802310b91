"""Clips per second of `toolkit score` on video: decoding alone, inference alone and end to end,
as ratios measured in one run.

The clips are the `motion` demo data (12–20 frames of 96×96, mostly MP4/H.264, some WebM/VP9).
Decoding runs as the scorer runs it: batches of clips in worker processes. Without --model, a
model is trained first with the video-cnn recipe (two epochs: speed does not depend on accuracy).

    python benchmarks/video.py --clips 300
    python benchmarks/video.py --model model.onnx --clips 300
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from score import (  # benchmarks/score.py: this folder is on sys.path when run
    best_of,
    demo_run,
    print_ratios,
    time_inference_and_scoring,
)

from toolkit_deploy.files import list_files
from toolkit_deploy.pipeline import _Processes
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.session import available_cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A toolkit video model (.onnx); default: train one.")
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from toolkit.demo.motion import MOTION_CLASSES, make_motion

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = (Path(args.model) if args.model
                 else demo_run(tmp, "motion", "video-cnn", 20, {"train.epochs": 2})[1])
        predictor = Predictor(model)
        make_motion(tmp / "clips", per_class=-(-args.clips // len(MOTION_CLASSES)), seed=9)
        paths = list(list_files(tmp / "clips", predictor.decoder.extensions).files)[: args.clips]
        n, bs, workers = len(paths), args.batch_size, available_cores()
        chunks = [paths[i : i + bs] for i in range(0, n, bs)]
        processes = _Processes(predictor.decoder, workers)
        try:
            processes.result(processes.submit(chunks[0]), chunks[0])  # start the workers

            def decode_all() -> list:
                handles = [(processes.submit(c), c) for c in chunks]
                return [processes.result(h, c) for h, c in handles]

            decode = best_of(args.repeats, decode_all)
        finally:
            processes.close()
        one_process = best_of(1, lambda: [predictor.decode(p) for p in paths])
        clips = np.stack([predictor.decode(p) for p in paths])
        infer, end_to_end = time_inference_and_scoring(predictor, clips, tmp / "clips",
                                                       tmp / "p.csv", bs, args.repeats)

    rate = {k: n / t for k, t in [("decode", decode), ("one", one_process), ("infer", infer),
                                  ("score", end_to_end)]}
    print(f"{n} clips, {model.name}, input {list(clips.shape[1:])}, batch {bs}, {workers} "
          f"cores, best of {args.repeats}")
    print(f"decoding alone      {rate['decode']:8.1f} clips/s  ({workers} worker processes; "
          f"in this process: {rate['one']:.1f})")
    print(f"inference alone     {rate['infer']:8.1f} clips/s")
    print(f"score end to end    {rate['score']:8.1f} clips/s  (worker start-up included)")
    print_ratios(rate, "decode", "decoding", "decode")


if __name__ == "__main__":
    main()
