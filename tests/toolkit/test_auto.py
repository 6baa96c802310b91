"""Defaults that adapt to the data (`toolkit.training.auto`): each `auto` key takes effect, is
recorded in the run, and the model still exports with proven parity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from toolkit.export.onnx_export import export_run
from toolkit.recipe import load_recipe
from toolkit.training.auto import resolve_auto
from toolkit.training.data import make_split
from toolkit.training.trainer import train
from toolkit_deploy.decoders import decoder_extensions
from toolkit_deploy.predictor import Predictor

#: Small networks: what is tested is what the auto keys choose, not accuracy.
SMALL = {"model.channels": [4, 8], "model.hidden": [8], "optim.warmup_epochs": 0}


def write_images(root: Path, per_class: int, size: tuple[int, int], mode: str,
                 splits: tuple[str, ...] = ("train", "test")) -> Path:
    """Two classes (bright and dark squares) of `mode` PNG files in `root/<split>/<class>/`."""
    rng = np.random.default_rng(0)
    for split in splits:
        for label, level in (("bright", 200), ("dark", 40)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(level, 30, (size[1], size[0], 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).convert(mode).save(folder / f"{i}.png")
    return root


def test_image_size_and_channels_come_from_the_training_images(tmp_path: Path) -> None:
    gray = write_images(tmp_path / "gray", 12, (32, 32), "L")
    run = train(load_recipe("image-cnn", {**SMALL, "train.epochs": 1}), gray, tmp_path / "run",
                device="cpu", progress=False)
    assert (run.recipe.data.image_size, run.recipe.data.channels) == (32, 1)
    assert run.info["auto"]["data.channels"]["value"] == 1
    assert "grayscale" in run.info["auto"]["data.channels"]["reason"]
    result = export_run(run.path, tmp_path / "model.onnx")
    assert result.report.passed
    # The served model takes what the data has: 32 × 32 × 1, not 64 × 64 × 3.
    assert Predictor(result.path).spec.preprocess.input_shape == (32, 32, 1)

    rgb = write_images(tmp_path / "rgb", 4, (150, 100), "RGB")
    recipe = load_recipe("image-cnn")
    split = make_split(rgb, decoder_extensions("image"), 0.1, 0.1, 0, recipe.data)
    resolved, chosen = resolve_auto(recipe, split, rgb)
    # Median shorter side 100 px: capped at 64; RGB files keep three channels.
    assert (resolved.data.image_size, resolved.data.channels) == (64, 3)
    assert "100 px" in chosen["data.image_size"]["reason"]


def test_a_step_budget_sets_the_epochs_and_patience(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", 40, (16, 16), "RGB")
    recipe = load_recipe("image-cnn", {**SMALL, "data.image_size": 16, "train.steps": 30,
                                       "train.batch_size": 16, "train.merge_val": "never"})
    split = make_split(data, decoder_extensions("image"), 0.1, 0.1, 0, recipe.data)
    resolved, chosen = resolve_auto(recipe, split, data)
    per_epoch = math.ceil(len(split.train) / 16)  # 72 training files: 5 steps per epoch
    assert resolved.train.epochs == math.ceil(30 / per_epoch) == 6
    assert resolved.train.patience == 5  # a quarter of 6 epochs, at least 5
    assert "30 steps" in chosen["train.epochs"]["reason"]
    # Twice the files, fewer epochs: the same number of steps (rounded up to whole epochs).
    big = write_images(tmp_path / "big", 80, (16, 16), "RGB")
    split = make_split(big, decoder_extensions("image"), 0.1, 0.1, 0, recipe.data)
    per_epoch = math.ceil(len(split.train) / 16)  # 144 training files: 9 steps per epoch
    epochs = resolve_auto(recipe, split, big)[0].train.epochs
    assert epochs == 4 and (epochs - 1) * per_epoch < 30 <= epochs * per_epoch
    # A number is taken as given.
    fixed = load_recipe("image-cnn", {**SMALL, "train.epochs": 4, "train.patience": 0})
    assert resolve_auto(fixed, split, big)[0].train.epochs == 4


def test_small_classes_train_on_the_validation_files_too(tmp_path: Path) -> None:
    data = write_images(tmp_path / "data", 30, (16, 16), "RGB")
    recipe = load_recipe("image-cnn", {**SMALL, "data.image_size": 16, "train.steps": 12,
                                       "train.batch_size": 16})
    run = train(recipe, data, tmp_path / "run", device="cpu", progress=False)
    assert run.recipe.train.merge_val == "always"
    assert "27 training files (< 100)" in run.info["auto"]["train.merge_val"]["reason"]
    # 54 training + 6 validation files: 4 steps per epoch, 3 epochs for the 12 steps.
    assert run.info["trained_on"] == len(run.split.train) + len(run.split.val) == 60
    assert run.recipe.train.epochs == run.info["epochs_run"] == 3
    epochs = [json.loads(x) for x in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert all(e["val_accuracy"] is None for e in epochs)  # nothing held out to validate on
    results = json.loads((run.path / "results.json").read_text())
    assert results["split"] == "test" and results["best_epoch"] == 3  # the last weights
    assert results["n_samples"] == len(run.split.test) == 60  # the test/ folder
    assert export_run(run.path, tmp_path / "model.onnx").report.passed

    # Without a test split the held-out figures come from val, so nothing is merged ...
    no_test = write_images(tmp_path / "no-test", 30, (16, 16), "RGB", splits=("train",))
    no_test_recipe = load_recipe("image-cnn", {**SMALL, "data.image_size": 16, "train.epochs": 2,
                                               "data.test_fraction": 0})
    plain = train(no_test_recipe, no_test / "train", tmp_path / "plain", device="cpu",
                  progress=False)
    assert plain.recipe.train.merge_val == "never"
    assert plain.info["trained_on"] == len(plain.split.train)
    # ... and refusing is better than figures measured on trained-on files.
    forced = load_recipe("image-cnn", {**SMALL, "train.merge_val": "always",
                                       "data.test_fraction": 0})
    with pytest.raises(ValueError, match="held-out figures need a test split"):
        train(forced, no_test / "train", tmp_path / "forced", device="cpu", progress=False)
    # Large classes keep their validation split for early stopping.
    big = write_images(tmp_path / "big", 150, (16, 16), "RGB", splits=("train",))  # 120 train
    split = make_split(big / "train", decoder_extensions("image"), 0.1, 0.1, 0, recipe.data)
    assert resolve_auto(recipe, split, big / "train")[0].train.merge_val == "never"


def test_text_bag_learns_character_ngrams_weighted_by_idf(tmp_path: Path) -> None:
    # Chinese without spaces and English: character n-grams need no word boundaries.
    words = {"zh": ["天气", "晴朗", "下雨", "温度"], "en": ["weather", "sunny", "rain", "cold"]}
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 6)):
        for label, vocabulary in words.items():
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                sep = "" if label == "zh" else " "
                text = sep.join(rng.choice(vocabulary, 5))
                (root / split / label / f"{i}.txt").write_text(text, encoding="utf-8")
    run = train(load_recipe("text-bag", {"train.steps": 60, "data.max_length": 64}), root,
                tmp_path / "run", device="cpu", progress=False)
    tokenizer = json.loads((run.path / "tokenizer.json").read_text(encoding="utf-8"))
    assert "天" in tokenizer["model"]["vocab"] and "w" in tokenizer["model"]["vocab"]
    idf = run.load_model().idf.numpy()
    # IDF as scikit-learn smooths it, over the texts the model trained on (train + val: these
    # small classes merge them): a space is in every English text and no Chinese one; the
    # rarest n-grams are in one text; one never seen weighs 0. The table is a constant of the
    # exported graph.
    n = len(run.split.train) + len(run.split.val)
    space = tokenizer["model"]["vocab"][" "]
    assert idf[space] == pytest.approx(np.log((1 + n) / (1 + n / 2)) + 1)
    assert idf.max() <= np.log((1 + n) / 2) + 1 + 1e-6
    assert idf[tokenizer["model"]["vocab"]["[UNK]"]] == 0
    assert json.loads((run.path / "results.json").read_text())["accuracy"] == 1.0
    result = export_run(run.path, tmp_path / "model.onnx")
    assert result.report.passed and result.report.max_abs_diff <= 1e-4


def test_text_bag_weighs_repeated_ngrams_sublinearly_as_scikit_learn_does() -> None:
    from sklearn.feature_extraction.text import TfidfTransformer

    from toolkit.models.text import NgramBag

    # A bag whose embeddings and head are the identity returns its normalised weights.
    bag = NgramBag(vocab_size=4, pad_id=0, embed_dim=4, ngrams=1, buckets=0, hidden=(),
                   n_classes=4, activation="relu", dropout=0.0).eval()
    with torch.no_grad():
        bag.embed.weight.copy_(torch.eye(4))
        bag.head[-1].weight.copy_(torch.eye(4))
        bag.head[-1].bias.zero_()
        bag.idf.copy_(torch.tensor([1.0, 1.5, 2.0, 1.2]))
        got = bag(torch.tensor([[1, 2, 1, 1, 3, 0, 0], [2, 2, 0, 0, 0, 0, 0]])).numpy()
    counts = np.array([[0, 3, 1, 1], [0, 0, 2, 0]])
    expected = TfidfTransformer(sublinear_tf=True).fit(counts)
    expected.idf_ = np.array([1.0, 1.5, 2.0, 1.2])  # the bag's own table
    np.testing.assert_allclose(got, expected.transform(counts).toarray(), atol=1e-6)


def test_text_bag_drops_ngrams_never_seen_in_training() -> None:
    from toolkit.models.text import NgramBag

    torch.manual_seed(0)
    bag = NgramBag(vocab_size=5, pad_id=0, embed_dim=3, ngrams=2, buckets=64, hidden=(),
                   n_classes=2, activation="relu", dropout=0.0).eval()
    with torch.no_grad():
        bag.embed.weight.normal_()
    bag.adapt([torch.tensor([[1, 2, 1, 0], [2, 1, 2, 1]])])
    seen = bag(torch.tensor([[1, 2, 1, 0, 0]]))
    # Token 3 and the bigrams (1, 3), (3, 3) are in no training text: as for scikit-learn's
    # fitted vocabulary they change neither the features nor their norm.
    with_unseen = bag(torch.tensor([[1, 2, 1, 3, 3]]))
    torch.testing.assert_close(with_unseen, seen)
    assert bag.idf[3] == 0 and bag.idf[1] > 0


def test_text_bag_decays_its_ngram_embeddings_but_not_its_biases() -> None:
    from toolkit.models import create_model
    from toolkit.training.optim import create_optimizer
    from toolkit_deploy.spec import TextPreprocess

    recipe = load_recipe("text-bag", {"model.buckets": 64})
    model = create_model(recipe, 3, TextPreprocess(tokenizer="{}", max_length=16, pad_id=0,
                                                   vocab_size=50))
    decay = {id(p): group["weight_decay"] for group in create_optimizer(
        model, recipe.optim).param_groups for p in group["params"]}
    assert recipe.optim.weight_decay > 0
    assert decay[id(model.embed.weight)] == recipe.optim.weight_decay
    assert decay[id(model.head[-1].bias)] == 0
