"""Held-out accuracy of the text recipes against a TF-IDF + logistic-regression baseline.

For each data set (the `text` demo comments and the `docstrings` topics) and each text recipe, a
run is trained; the baseline is fitted on the same run's training split (scikit-learn, a dev
dependency) and both are scored on the run's held-out test split. The baseline takes the better of
word 1–2-grams and character 1–4-grams (the latter is what works for Chinese, which has no
spaces), chosen on the run's validation split.

    python benchmarks/text_accuracy.py --per-class 300
    python benchmarks/text_accuracy.py --per-class 1000 --kinds text
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from toolkit.data import make_dataset
from toolkit.recipe import load_recipe
from toolkit.training.data import split_samples
from toolkit.training.trainer import train
from toolkit_deploy.decoders.text import read_text_file


def texts_of(data: Path, items: tuple) -> tuple[list[str], list[int]]:
    samples = split_samples(data, items)
    return [read_text_file(p, None, 10**7) for p in samples.sources], list(samples.targets)


def baseline(data: Path, run) -> tuple[float, str]:
    """Test accuracy of TF-IDF + logistic regression on the run's split; and which features."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_x, train_y = texts_of(data, run.split.train)
    val_x, val_y = texts_of(data, run.split.val)
    test_x, test_y = texts_of(data, run.split.test)
    candidates = {
        "word 1-2-grams": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        "char 1-4-grams": TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4),
                                          sublinear_tf=True),
    }
    best = None
    for name, features in candidates.items():
        model = make_pipeline(features, LogisticRegression(C=10.0, max_iter=2000))
        model.fit(train_x, train_y)
        val = model.score(val_x, val_y)
        if best is None or val > best[0]:
            best = (val, name, model.score(test_x, test_y))
    return best[2], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="text,docstrings",
                        help="Demo data sets, comma-separated.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds.split(","):
            data = Path(tmp) / kind
            make_dataset(kind, data, per_class=args.per_class, seed=args.seed)
            for recipe in ("text-bag", "text-encoder"):
                started = time.perf_counter()
                run = train(load_recipe(recipe, {"train.seed": args.seed}), data,
                            Path(tmp) / f"{kind}-{recipe}", device="cpu", progress=False)
                seconds = time.perf_counter() - started
                figures = json.loads((run.path / "results.json").read_text())
                reference, features = baseline(data, run)
                rows.append((kind, recipe, figures["n_samples"], figures["accuracy"], reference,
                             features, seconds))
    print(f"{'data':<11} {'recipe':<13} {'test n':>6} {'recipe acc':>10} {'tfidf+LR':>9} "
          f"{'Δ points':>8}  baseline features, train time")
    for kind, recipe, n, acc, ref, features, seconds in rows:
        print(f"{kind:<11} {recipe:<13} {n:>6} {acc:>10.4f} {ref:>9.4f} {100 * (acc - ref):>+8.1f}"
              f"  {features}, {seconds:.0f} s")


if __name__ == "__main__":
    main()
