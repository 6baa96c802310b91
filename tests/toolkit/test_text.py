"""Text end to end: tokenizer per run, both text recipes, tables, Chinese-only data, parity."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from toolkit.export.onnx_export import export_run
from toolkit.models.text import _HASH_M, _HASH_P, NgramBag, TextEncoder
from toolkit.recipe import load_recipe
from toolkit.run import TOKENIZER
from toolkit.training.trainer import train
from toolkit_deploy.cli import main
from toolkit_deploy.predictor import Predictor

#: Chinese sentences about three topics, written without spaces, sharing their filler words.
ZH = {
    "体育": ["足球", "比赛", "球队", "进球", "教练", "冠军", "球员"],
    "美食": ["餐厅", "美食", "味道", "厨师", "米饭", "面条", "好吃"],
    "科技": ["电脑", "手机", "软件", "程序", "网络", "芯片", "数据"],
}
FILLER = ["我们", "今天", "觉得", "非常", "真的", "昨天", "朋友", "一起", "这个", "很"]
TINY_TEXT = {"train.epochs": 4, "data.max_length": 24, "model.embed_dim": 32,
             "data.vocab_size": 300, "data.min_frequency": 1}


def write_chinese(root: Path, per_class: int, seed: int) -> Path:
    rng = random.Random(seed)
    for label, words in ZH.items():
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            parts = [rng.choice(words if rng.random() < 0.4 else FILLER)
                     for _ in range(rng.randint(4, 9))]
            (root / label / f"{i:03d}.txt").write_text("".join(parts) + "。", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def chinese(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_chinese(tmp_path_factory.mktemp("zh") / "data", per_class=30, seed=0)


@pytest.mark.parametrize("recipe", ["text-bag", "text-encoder"])
def test_chinese_only_data_trains_exports_and_scores(recipe: str, chinese: Path,
                                                     tmp_path: Path) -> None:
    sets = {**TINY_TEXT, "train.epochs": 20 if recipe == "text-bag" else 10}
    run = train(load_recipe(recipe, sets), chinese, tmp_path / "run", device="cpu",
                progress=False)
    # 9 held-out texts, a few of which hold no word of their class at all (a 4-word text has
    # none 13 % of the time): one miss is 0.78. The 30 fresh texts below are the sharper check.
    assert json.loads((run.path / "results.json").read_text())["accuracy"] >= 0.7
    result = export_run(run.path, tmp_path / "model.onnx")
    held_out = len(run.split.test)
    # Every held-out text as written and repeated past the model's length.
    assert result.report.passed and result.report.n_samples == 2 * held_out
    assert result.report.top1_agreement == 1.0 and result.report.max_abs_diff <= 1e-4

    predictor = Predictor(result.path)
    assert predictor.labels == tuple(sorted(ZH))
    # The file alone serves: its tokenizer is the run's, byte for byte.
    assert predictor.spec.preprocess.tokenizer == (run.path / TOKENIZER).read_text("utf-8")
    fresh = write_chinese(tmp_path / "fresh", per_class=10, seed=99)
    out = tmp_path / "preds.csv"
    outcome = CliRunner().invoke(main, ["score", str(result.path), str(fresh), "--out", str(out),
                                        "-q"])
    assert outcome.exit_code == 0, outcome.output
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30
    accuracy = np.mean([r["path"].split("/")[0] == r["label"] for r in rows])
    assert accuracy >= 0.8
    # The same texts through PyTorch give the same decisions.
    model = run.load_model()
    ids = np.stack([predictor.decode(fresh / r["path"]) for r in rows])
    torch_labels = model(torch.from_numpy(ids)).argmax(1).numpy()
    assert [predictor.labels[i] for i in torch_labels] == [r["label"] for r in rows]


def test_tokenizer_splits_chinese_into_characters_and_is_deterministic(chinese: Path,
                                                                       tmp_path: Path) -> None:
    a = train(load_recipe("text-bag", {**TINY_TEXT, "train.epochs": 1}), chinese, tmp_path / "a",
              device="cpu", progress=False)
    b = train(load_recipe("text-bag", {**TINY_TEXT, "train.epochs": 1}), chinese, tmp_path / "b",
              device="cpu", progress=False)
    document = (a.path / TOKENIZER).read_text("utf-8")
    assert document == (b.path / TOKENIZER).read_text("utf-8")
    from tokenizers import Tokenizer

    tokens = Tokenizer.from_str(document).encode("我们的猫球队").tokens
    # One piece per ideograph; 猫 never occurs in the training texts.
    assert tokens[:6] == ["我", "们", "的", "[UNK]", "球", "队"]
    assert tokens[6:] == ["[PAD]"] * (24 - 6)


def test_train_on_a_labelled_csv_table(tmp_path: Path) -> None:
    rng = random.Random(3)
    table = tmp_path / "comments.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["comment", "topic"])
        for i in range(90):
            label = ["体育", "美食", "科技"][i % 3]
            words = ZH[label]
            writer.writerow(["".join(rng.choice(words + FILLER) for _ in range(6)), label])
    sets = {**TINY_TEXT, "data.text_column": "comment", "data.label_column": "topic"}
    run = train(load_recipe("text-bag", sets), table, tmp_path / "run", device="cpu",
                progress=False)
    assert run.split.source == "table" and run.labels == tuple(sorted(ZH))
    assert len(run.split.train) + len(run.split.val) + len(run.split.test) == 90
    result = export_run(run.path, tmp_path / "model.onnx")
    assert result.report.passed
    evaluation = CliRunner().invoke(main, ["evaluate", str(result.path), "--data", str(table),
                                           "--text-column", "comment", "--label-column", "topic",
                                           "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    assert json.loads(evaluation.output)["n_samples"] == 90
    with pytest.raises(ValueError, match=r"no column 'text'.*--text-column"):
        train(load_recipe("text-bag", TINY_TEXT), table, tmp_path / "bad", progress=False)


def test_a_text_in_another_encoding_needs_data_encoding(chinese: Path, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(chinese, data)
    odd = data / "美食" / "000.txt"
    odd.write_bytes(odd.read_text("utf-8").encode("gb18030"))
    with pytest.raises(ValueError, match=r"000.txt.*not valid UTF-8.*--set data.encoding=NAME"):
        train(load_recipe("text-bag", TINY_TEXT), data, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # bad data fails before the run folder is made
    for path in data.rglob("*.txt"):
        if path != odd:
            path.write_bytes(path.read_text("utf-8").encode("gb18030"))
    run = train(load_recipe("text-bag", {**TINY_TEXT, "data.encoding": "gb18030"}), data,
                tmp_path / "run", progress=False)
    assert export_run(run.path, tmp_path / "m.onnx").report.passed
    model = Predictor(tmp_path / "m.onnx", encoding="gb18030")
    assert model.predict([odd])[0] in ZH


def test_image_recipe_refuses_a_table(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="trains on a labelled folder"):
        train(load_recipe("image-cnn"), table, tmp_path / "run", progress=False)


def test_ngram_ids_are_the_documented_rolling_hash() -> None:
    bag = NgramBag(vocab_size=50, pad_id=0, embed_dim=4, ngrams=3, buckets=97, hidden=(),
                   n_classes=2, activation="relu", dropout=0.0)
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    grams, mask = bag.features(ids)

    def bucket(*tokens: int) -> int:
        h = tokens[0]
        for t in tokens[1:]:
            h = (h * _HASH_P + t) % _HASH_M
        return 50 + h % 97

    real = [g for g, m in zip(grams[0].tolist(), mask[0].tolist(), strict=True) if m]
    assert real == [5, 6, 7, bucket(5, 6), bucket(6, 7), bucket(5, 6, 7)]


@pytest.mark.parametrize("family", ["bag", "encoder"])
def test_padding_never_changes_a_prediction(family: str) -> None:
    torch.manual_seed(0)
    if family == "bag":
        model = NgramBag(60, 0, 8, 2, 31, (8,), 3, "relu", 0.0)
    else:
        model = TextEncoder(60, 0, 32, 8, 2, 2, (8,), 3, "gelu", 0.0)
    model.eval()
    ids = torch.randint(2, 60, (4, 10))
    short = torch.nn.functional.pad(ids, (0, 6))  # length 16
    long = torch.nn.functional.pad(ids, (0, 22))  # length 32
    torch.testing.assert_close(model(short), model(long), atol=1e-5, rtol=1e-5)


def test_text_recipe_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="data.tokenizer' must be one of"):
        load_recipe("text-bag", {"data.tokenizer": "sentencepiece"})
    with pytest.raises(ValueError, match="model.heads' must be an int >= 1 that divides"):
        load_recipe("text-encoder", {"model.heads": 5})
    with pytest.raises(ValueError, match="data.encoding' must be a Python codec"):
        load_recipe("text-bag", {"data.encoding": "klingon"})
    with pytest.raises(ValueError, match=r"Unknown recipe key\(s\) model.channels"):
        load_recipe("text-bag", {"model.channels": [8]})
