"""Texts per second of `toolkit score` on short texts: tokenisation alone, inference alone and end
to end, as ratios measured in one run.

Without --model, trains the text-bag recipe on the `text` demo data first (a minute or so).
The texts are fresh demo comments (English, Chinese, French), one per line of a .txt file.

    python benchmarks/text.py --texts 20000
    python benchmarks/text.py --model model.onnx --texts 20000
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

from toolkit_deploy.predictor import Predictor
from toolkit_deploy.session import available_cores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="A toolkit text model (.onnx); default: train one.")
    parser.add_argument("--texts", type=int, default=20000, help="Short texts to score.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from toolkit.demo.comments import make_comments

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = (Path(args.model) if args.model
                 else demo_run(tmp, "text", "text-bag", 300)[1])
        predictor = Predictor(model)
        make_comments(tmp / "fresh", per_class=-(-args.texts // 4), seed=7)
        texts = [" ".join(p.read_text("utf-8-sig").split())
                 for p in sorted((tmp / "fresh").rglob("*.txt"))][: args.texts]
        lines = tmp / "texts.txt"
        lines.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
        n, bs, workers = len(texts), args.batch_size, available_cores()

        many = predictor.decoder.decode_many  # what the scorer's decoding tasks call
        tokenise = best_of(args.repeats, lambda: [many(texts[i : i + args.batch_size])
                                                  for i in range(0, len(texts), args.batch_size)])
        one_by_one = best_of(args.repeats, lambda: [predictor.decode(t) for t in texts])
        ids = np.stack([predictor.decode(t) for t in texts])
        infer, end_to_end = time_inference_and_scoring(predictor, ids, lines, tmp / "p.csv", bs,
                                                       args.repeats)

    rate = {k: n / t for k, t in [("tok", tokenise), ("one", one_by_one), ("infer", infer),
                                  ("score", end_to_end)]}
    print(f"{n} texts ({np.mean([len(t) for t in texts]):.0f} characters on average), "
          f"{model.name}, input length {ids.shape[1]}, batch {bs}, {workers} cores, "
          f"best of {args.repeats}")
    print(f"tokenisation alone  {rate['tok']:9.1f} texts/s  (batches of {bs}, as the scorer; "
          f"one text per call: {rate['one']:.1f})")
    print(f"inference alone     {rate['infer']:9.1f} texts/s")
    print(f"score end to end    {rate['score']:9.1f} texts/s")
    print_ratios(rate, "tok", "tokenisation", "tokenise")


if __name__ == "__main__":
    main()
