"""Clips per second of `toolkit score` on audio: decoding + resampling alone, inference alone and
end to end, as ratios measured in one run.

The clips are one second long, 16-bit WAV at mixed sample rates (8 to 48 kHz, so most are
resampled to the model's 16 kHz), a tone over noise. Without --model, a model is trained first
with the audio-cnn recipe's architecture (two epochs on a little demo data: speed does not depend
on accuracy).

    python benchmarks/audio.py --clips 2000
    python benchmarks/audio.py --model model.onnx --clips 2000
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from score import (  # benchmarks/score.py: this folder is on sys.path when run
    best_of,
    demo_run,
    print_ratios,
    time_inference_and_scoring,
)

from toolkit_deploy.files import list_files
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.session import available_cores

RATES = (8000, 16000, 22050, 44100, 48000)


def write_clips(folder: Path, n: int) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        rate = RATES[i % len(RATES)]
        t = np.arange(rate) / rate
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 2000) * t)
        wave += 0.03 * rng.standard_normal(rate)
        sf.write(folder / f"{i:05d}.wav", wave.astype(np.float32), rate, subtype="PCM_16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A toolkit audio model (.onnx); default: train one.")
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = (Path(args.model) if args.model
                 else demo_run(tmp, "sounds", "audio-cnn", 40, {"train.epochs": 2})[1])
        predictor = Predictor(model)
        write_clips(tmp / "clips", args.clips)
        paths = list(list_files(tmp / "clips", predictor.decoder.extensions).files)
        n, bs, workers = len(paths), args.batch_size, available_cores()
        with ThreadPoolExecutor(workers) as pool:  # as the scorer's decoding threads
            decode = best_of(args.repeats, lambda: list(pool.map(predictor.decode, paths)))
        waves = np.concatenate([predictor.decode(p) for p in paths])
        infer, end_to_end = time_inference_and_scoring(predictor, waves, tmp / "clips",
                                                       tmp / "p.csv", bs, args.repeats)

    rate = {k: n / t for k, t in [("decode", decode), ("infer", infer), ("score", end_to_end)]}
    print(f"{n} one-second clips at {'/'.join(str(r // 1000) for r in RATES)} kHz, "
          f"{model.name}, batch {bs}, {workers} cores, best of {args.repeats}")
    print(f"decode + resample alone  {rate['decode']:8.1f} clips/s")
    print(f"inference alone          {rate['infer']:8.1f} clips/s")
    print(f"score end to end         {rate['score']:8.1f} clips/s")
    print_ratios(rate, "decode", "decoding", "decode")


if __name__ == "__main__":
    main()
