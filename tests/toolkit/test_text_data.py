"""Tests for the text demo data (toolkit.demo.comments, toolkit.demo.docstrings): real UTF-8
files written to a tmp folder and read back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from toolkit.demo.comments import COMMENT_CLASSES, make_comments
from toolkit.demo.docstrings import DOCSTRING_TOPICS, docstring_counts, make_docstrings

BOM = b"\xef\xbb\xbf"
CJK = re.compile(r"[\u4e00-\u9fff]")
FRENCH_LETTERS = re.compile(r"[éèçàêâôù]")
ENGLISH_WORDS = re.compile(r"\b(the|is|it|and|my|for|this)\b", re.IGNORECASE)

MAKERS: dict[str, Callable[..., int]] = {"comments": make_comments, "docstrings": make_docstrings}


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.txt"))


def _texts(root: Path) -> list[str]:
    return [p.read_text(encoding="utf-8-sig") for p in _files(root)]


def test_comments_layout_and_count(tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert make_comments(out, per_class=5, seed=0) == 5 * len(COMMENT_CLASSES)
    assert sorted(p.name for p in out.iterdir()) == sorted(COMMENT_CLASSES)
    for label in COMMENT_CLASSES:
        assert sorted(p.name for p in (out / label).iterdir()) == [f"{i:05d}.txt"
                                                                   for i in range(5)]


def test_docstrings_layout_count_and_per_class(tmp_path: Path) -> None:
    out = tmp_path / "d"
    assert make_docstrings(out, per_class=7, seed=0) == 7 * len(DOCSTRING_TOPICS)
    assert sorted(p.name for p in out.iterdir()) == sorted(DOCSTRING_TOPICS)
    for topic in DOCSTRING_TOPICS:
        assert sorted(p.name for p in (out / topic).iterdir()) == [f"{i:05d}.txt"
                                                                   for i in range(7)]


@pytest.mark.parametrize("kind", MAKERS)
def test_every_file_decodes_as_utf8_and_holds_text(tmp_path: Path, kind: str) -> None:
    MAKERS[kind](tmp_path / kind, per_class=12, seed=0)
    for path in _files(tmp_path / kind):
        data = path.read_bytes()
        text = data.decode("utf-8-sig")  # Raises on a byte that is not UTF-8.
        assert text.strip() == text and text, path
        assert "\ufeff" not in text, path  # A BOM only ever at the very start.


@pytest.mark.parametrize("kind", MAKERS)
def test_same_seed_same_bytes(tmp_path: Path, kind: str) -> None:
    MAKERS[kind](tmp_path / "a", per_class=6, seed=7)
    MAKERS[kind](tmp_path / "b", per_class=6, seed=7)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("kind", MAKERS)
def test_different_seed_different_texts(tmp_path: Path, kind: str) -> None:
    MAKERS[kind](tmp_path / "a", per_class=6, seed=0)
    MAKERS[kind](tmp_path / "b", per_class=6, seed=1)
    # Template comments may repeat by chance, so compare the sets, not file by file.
    assert set(_texts(tmp_path / "a")) != set(_texts(tmp_path / "b"))


def test_same_seed_same_bytes_in_another_interpreter(tmp_path: Path) -> None:
    # Nothing may depend on str hashing (set or dict order keyed by str): a fresh interpreter
    # with another PYTHONHASHSEED must write the same bytes.
    script = ("import sys; from pathlib import Path; "
              "from toolkit.demo.comments import make_comments; "
              "from toolkit.demo.docstrings import make_docstrings; "
              "make_comments(Path(sys.argv[1]) / 'c', 4, 3); "
              "make_docstrings(Path(sys.argv[1]) / 'd', 4, 3)")
    for name, hash_seed in (("x", "1"), ("y", "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True, env=env,
                       cwd=Path(__file__).resolve().parents[2])
    x, y = _files(tmp_path / "x"), _files(tmp_path / "y")
    assert len(x) == 4 * (len(COMMENT_CLASSES) + len(DOCSTRING_TOPICS))
    assert [p.read_bytes() for p in x] == [p.read_bytes() for p in y]


def test_comment_does_not_depend_on_per_class(tmp_path: Path) -> None:
    make_comments(tmp_path / "few", per_class=3, seed=5)
    make_comments(tmp_path / "many", per_class=8, seed=5)
    for few in _files(tmp_path / "few"):
        many = tmp_path / "many" / few.relative_to(tmp_path / "few")
        assert few.read_bytes() == many.read_bytes()


def test_some_comment_files_start_with_a_bom(tmp_path: Path) -> None:
    make_comments(tmp_path / "c", per_class=25, seed=0)
    starts = [p.read_bytes().startswith(BOM) for p in _files(tmp_path / "c")]
    # About one in ten: some, but far from all.
    assert 0 < sum(starts) < len(starts) / 4


def test_docstring_files_have_no_bom(tmp_path: Path) -> None:
    make_docstrings(tmp_path / "d", per_class=10, seed=0)
    assert not any(p.read_bytes().startswith(BOM) for p in _files(tmp_path / "d"))


def test_chinese_only_set_is_chinese_without_spaces(tmp_path: Path) -> None:
    make_comments(tmp_path / "zh", per_class=15, seed=0, languages=("zh",))
    for text in _texts(tmp_path / "zh"):
        assert CJK.search(text), text
        # Real Chinese puts no spaces between words or sentences.
        assert not re.search(r"\s", text), text
        assert not ENGLISH_WORDS.search(text) and not FRENCH_LETTERS.search(text), text


def test_english_only_set_has_no_chinese_or_french(tmp_path: Path) -> None:
    make_comments(tmp_path / "en", per_class=15, seed=0, languages=("en",))
    for text in _texts(tmp_path / "en"):
        assert not CJK.search(text) and not FRENCH_LETTERS.search(text), text


def test_multilingual_set_holds_all_three_languages(tmp_path: Path) -> None:
    make_comments(tmp_path / "c", per_class=10, seed=0)
    texts = _texts(tmp_path / "c")
    chinese = [t for t in texts if CJK.search(t)]
    french = [t for t in texts if FRENCH_LETTERS.search(t)]
    english = [t for t in texts if ENGLISH_WORDS.search(t) and not CJK.search(t)]
    # 40 comments, each language drawn with probability 1/3.
    assert len(chinese) >= 5 and len(french) >= 5 and len(english) >= 5
    assert any(not t.isascii() for t in texts)


def test_every_class_mentions_products(tmp_path: Path) -> None:
    # Products are shared by all classes, so a product name is no shortcut to the label.
    make_comments(tmp_path / "c", per_class=30, seed=0, languages=("en",))
    products = re.compile(r"blender|phone case|backpack|desk lamp|charger|kettle|keyboard|"
                          r"frying pan|smartwatch|vacuum cleaner|yoga mat|water bottle")
    for label in COMMENT_CLASSES:
        texts = _texts(tmp_path / "c" / label)
        assert sum(bool(products.search(t.lower())) for t in texts) >= 5, label


def test_docstring_samples_are_unique_collapsed_paragraphs(tmp_path: Path) -> None:
    make_docstrings(tmp_path / "d", per_class=40, seed=0)
    texts = _texts(tmp_path / "d")
    assert len(set(texts)) == len(texts)  # Also across topics.
    for text in texts:
        assert len(text) >= 40 and "\n" not in text and "  " not in text, text


def test_every_topic_holds_enough_for_the_default_per_class() -> None:
    counts = docstring_counts()
    assert sorted(counts) == sorted(DOCSTRING_TOPICS)
    assert min(counts.values()) >= 200, counts


def test_too_large_per_class_says_how_many_exist(tmp_path: Path) -> None:
    smallest = min(docstring_counts().values())
    with pytest.raises(ValueError, match=rf"per_class=100000 is more than some topics hold: "
                                         rf".*\d+ unique paragraphs.*per_class <= {smallest}\."):
        make_docstrings(tmp_path / "d", per_class=100_000)
    assert not (tmp_path / "d").exists()
    # The largest per_class the message allows does work.
    assert make_docstrings(tmp_path / "ok", per_class=smallest) == smallest * len(DOCSTRING_TOPICS)


@pytest.mark.parametrize(("languages", "message"), [
    ((), r"languages must be a non-empty tuple"),
    ("zh", r"languages must be a non-empty tuple of codes such as \('zh',\)\. Got 'zh'"),
    (("en", "de"), r"Unknown language 'de'; valid languages: en, zh, fr\."),
    (("en", "en"), r"languages repeats a code"),
])
def test_bad_languages(tmp_path: Path, languages: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_comments(tmp_path / "c", per_class=1, languages=languages)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("per_class", [0, -1, 2.5, "3", True])
def test_bad_per_class(tmp_path: Path, kind: str, per_class: object) -> None:
    with pytest.raises(ValueError, match=r"per_class must be an int >= 1\. Got"):
        MAKERS[kind](tmp_path / "t", per_class=per_class)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("kind", MAKERS)
def test_bad_seed(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ValueError, match=r"seed must be an int >= 0\. Got -1"):
        MAKERS[kind](tmp_path / "t", per_class=1, seed=-1)


@pytest.mark.parametrize("kind", MAKERS)
def test_non_empty_out_is_refused(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "t"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=rf"not empty.*old\.txt.*make_{kind}"):
        MAKERS[kind](out, per_class=1)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]


@pytest.mark.parametrize("kind", MAKERS)
def test_out_is_a_file(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "t"
    out.write_text("")
    with pytest.raises(FileExistsError, match="is a file"):
        MAKERS[kind](out, per_class=1)
