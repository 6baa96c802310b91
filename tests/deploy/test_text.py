"""Text in the runtime: decoding files and bytes, tables of texts, scoring and evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.deploy.builders import TEXT_LENGTH, keyword_tokenizer_json
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DatasetError, DecodeError
from toolkit_deploy.evaluate import evaluate
from toolkit_deploy.info import describe
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score
from toolkit_deploy.spec import ModelSpec, TextPreprocess
from toolkit_deploy.tables import read_table


@pytest.fixture(scope="module")
def decoder():
    spec = TextPreprocess(keyword_tokenizer_json(), TEXT_LENGTH, 0, 16, max_bytes=200)
    return create_decoder("text", spec)


def real_tokens(ids: np.ndarray) -> int:
    return int((ids != 0).sum())


def test_decoder_reads_str_path_and_bytes_alike(decoder, tmp_path: Path) -> None:
    text = "Goal! 比赛 pizza"
    path = tmp_path / "a.txt"
    path.write_text(text, encoding="utf-8")
    ids = decoder(text)
    assert ids.dtype == np.int64 and ids.shape == (TEXT_LENGTH,)
    assert real_tokens(ids) == 5  # goal, !, 比, 赛, pizza: CJK split into characters
    np.testing.assert_array_equal(decoder(path), ids)
    np.testing.assert_array_equal(decoder(text.encode()), ids)


def test_decoder_drops_bom_and_normalises(decoder, tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + "ＧＯＡＬ CAFÉ".encode())  # BOM, full-width, upper case
    np.testing.assert_array_equal(decoder(path), decoder("goal café"))
    assert 1 not in decoder(path)  # no unknown token: the BOM is not part of the text


def test_non_utf8_is_an_error_naming_the_fix_unless_an_encoding_is_given(tmp_path: Path) -> None:
    spec = TextPreprocess(keyword_tokenizer_json(), TEXT_LENGTH, 0, 16)
    path = tmp_path / "gbk.txt"
    path.write_bytes("美食 比赛".encode("gb18030"))
    with pytest.raises(DecodeError, match=r"not valid UTF-8.*--encoding"):
        create_decoder("text", spec)(path)
    ids = create_decoder("text", spec, encoding="gb18030")(path)
    np.testing.assert_array_equal(ids, create_decoder("text", spec)("美食 比赛"))
    with pytest.raises(ValueError, match="Unknown text encoding 'klingon'"):
        create_decoder("text", spec, encoding="klingon")


def test_decoder_refuses_empty_oversized_and_odd_inputs(decoder, tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="empty"):
        decoder(" \n\t")
    big = tmp_path / "big.txt"
    big.write_text("goal " * 100, encoding="utf-8")
    with pytest.raises(DecodeError, match="over the 200-byte limit"):
        decoder(big)
    with pytest.raises(DecodeError, match="File not found"):
        decoder(tmp_path / "missing.txt")
    with pytest.raises(DecodeError, match="is a directory"):
        decoder(tmp_path)
    with pytest.raises(TypeError, match="str \\(the text\\), a pathlib.Path"):
        decoder(42)


def test_long_text_is_truncated_to_the_model_length(decoder) -> None:
    ids = decoder("goal " * 30)
    assert ids.shape == (TEXT_LENGTH,) and real_tokens(ids) == TEXT_LENGTH


def test_decode_many_is_decoding_one_by_one(decoder, tmp_path: Path) -> None:
    """The scorer decodes a batch per call; each source must come out as if decoded alone."""
    good = tmp_path / "good.txt"
    good.write_text("Café 美食", encoding="utf-8")
    sources = ["goal match", tmp_path / "missing.txt", " ", b"\xff\xfe", good, "比赛 " * 30]
    results = decoder.decode_many(sources)
    assert len(results) == len(sources)
    for source, result in zip(sources, results, strict=True):
        try:
            expected = decoder(source)
        except DecodeError as e:
            assert isinstance(result, DecodeError) and str(result) == str(e)
        else:
            np.testing.assert_array_equal(result, expected)
    assert sum(isinstance(r, np.ndarray) for r in results) == 3


def test_text_spec_round_trips_through_metadata() -> None:
    spec = TextPreprocess(keyword_tokenizer_json(), TEXT_LENGTH, 0, 16)
    model = ModelSpec("text", ("a", "b"), spec, 18)
    back = ModelSpec.from_metadata(model.to_metadata())
    assert back.preprocess == spec
    assert back.input_spec == {"name": "input", "dtype": "int64", "shape": ["batch", TEXT_LENGTH]}
    with pytest.raises(ValueError, match="pad_id must be an int in"):
        TextPreprocess(spec.tokenizer, TEXT_LENGTH, 99, 16)


def test_predictor_classifies_texts_in_any_language(keyword_model: Path) -> None:
    predictor = Predictor(keyword_model)
    assert predictor.modality == "text"
    assert predictor.predict(["what a goal in that match", "我们去餐厅吃美食", "Un café!"]) == [
        "sport", "food", "food"]
    probs = predictor.predict_proba("比赛")
    assert probs.shape == (1, 2) and probs[0].argmax() == 0


def test_inspect_summarises_the_tokenizer(keyword_model: Path) -> None:
    info = describe(keyword_model)
    tokenizer = info["preprocess"]["tokenizer"]
    assert tokenizer["model"] == "WordLevel" and len(tokenizer["sha256"]) == 64
    assert info["inputs"][0]["dtype"] == "int64"


# Tables of texts ----------------------------------------------------------------------------


def test_txt_table_is_one_text_per_line_with_blank_lines_as_errors(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes("goal\r\n\n美食\u2028café\n".encode())
    rows = read_table(path)
    assert [r.id for r in rows] == ["1", "2", "3"]
    assert rows[0].text == "goal" and rows[2].text == "美食\u2028café"  # only \n ends a line
    assert rows[1].text is None and "empty" in rows[1].error


def test_csv_table_ids_columns_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,body,label\nx1,"goal, goal",sport\nx2,,food\n,pizza,food\n',
                    encoding="utf-8")
    rows = read_table(path, text_column="body", label_column="label")
    assert [(r.id, r.text, r.label) for r in rows] == [
        ("x1", "goal, goal", "sport"), ("x2", None, None), ("3", "pizza", "food")]
    assert "no text in 'body'" in rows[1].error
    with pytest.raises(DatasetError, match=r"no column 'text'; its columns are \['id', 'body', "
                                           r"'label'\].*--text-column"):
        read_table(path)


def test_jsonl_table_keeps_bad_lines_as_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 7, "text": "goal"}\n\n{"text": 3}\nnot json\n["a"]\n'
                    '{"text": "美食"}\n', encoding="utf-8")
    rows = read_table(path)
    assert [r.id for r in rows] == ["7", "3", "4", "5", "6"]  # line numbers; blank line skipped
    assert [r.text for r in rows] == ["goal", None, None, None, "美食"]
    assert "Invalid JSON" in rows[2].error and "not a JSON object" in rows[3].error


def test_table_in_another_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("text\ncafé\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not valid UTF-8"):
        read_table(path)
    assert read_table(path, encoding="latin-1")[0].text == "café"


# Scoring and evaluation ---------------------------------------------------------------------


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_score_a_folder_of_txt_files(keyword_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "deep").mkdir(parents=True)
    (folder / "a.txt").write_text("goal goal", encoding="utf-8")
    (folder / "deep" / "b.txt").write_bytes(b"\xef\xbb\xbf" + "美食".encode())
    (folder / "c.txt").write_bytes("球队".encode("gb18030"))
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    summary = score(keyword_model, folder, tmp_path / "p.csv", progress=False)
    rows = read_csv(tmp_path / "p.csv")
    assert list(rows[0]) == ["path", "label", "score", "error"]
    assert [(r["path"], r["label"]) for r in rows] == [
        ("a.txt", "sport"), ("c.txt", ""), ("deep/b.txt", "food")]
    assert "not valid UTF-8" in rows[1]["error"]
    assert summary.n_failed == 1 and "1 .md" in summary.ignored


@pytest.mark.parametrize("name, content, ids", [
    ("lines.txt", "goal\n美食\n\ncafé\n", ["1", "2", "3", "4"]),
    ("rows.csv", "id,text\na,goal\nb,美食\nc,\nd,café\n", ["a", "b", "c", "d"]),
    ("rows.jsonl", '{"text": "goal"}\n{"text": "美食"}\n{"text": ""}\n{"text": "café"}\n',
     ["1", "2", "3", "4"]),
])
def test_score_a_table_of_texts_gives_one_row_per_text(
        keyword_model: Path, tmp_path: Path, name: str, content: str, ids: list[str]) -> None:
    table = tmp_path / name
    table.write_text(content, encoding="utf-8")
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(main, ["score", str(keyword_model), str(table), "--out", str(out),
                                       "-q"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ids and {r["path"] for r in rows} == {name}
    assert [r["label"] for r in rows] == ["sport", "food", "", "food"]
    assert rows[2]["error"].startswith("DecodeError:")
    assert "scored 3/4" in result.output


def test_score_encoding_option(keyword_model: Path, tmp_path: Path) -> None:
    table = tmp_path / "gbk.txt"
    table.write_bytes("美食\n比赛\n".encode("gb18030"))
    args = ["score", str(keyword_model), str(table), "--out", str(tmp_path / "p.csv"), "-q"]
    failed = CliRunner().invoke(main, args)
    assert failed.exit_code == 1 and "--encoding" in failed.output
    result = CliRunner().invoke(main, [*args, "--overwrite", "--encoding", "gb18030"])
    assert result.exit_code == 0, result.output
    assert [r["label"] for r in read_csv(tmp_path / "p.csv")] == ["food", "sport"]


def test_evaluate_on_a_labelled_table(keyword_model: Path, tmp_path: Path) -> None:
    table = tmp_path / "labelled.jsonl"
    lines = [{"text": "goal", "topic": "sport"}, {"text": "美食 美食", "topic": "food"},
             {"text": "pizza", "topic": "sport"}, {"text": "", "topic": "food"}]
    table.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                     encoding="utf-8")
    result = evaluate(keyword_model, table, label_column="topic")
    assert result["n_samples"] == 3 and result["accuracy"] == pytest.approx(2 / 3)
    assert result["errors"] == [{"path": "labelled.jsonl:4",
                                 "error": "DecodeError: The row has no text in 'text'."}]
    table.write_text('{"text": "goal", "topic": "weather"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"labels \['weather'\] that are not labels"):
        evaluate(keyword_model, table, label_column="topic")


def test_evaluate_refuses_a_table_for_an_image_model(colour_model: Path, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("text,label\nx,red\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="image model is evaluated on a labelled folder"):
        evaluate(colour_model, table)


def test_a_csv_quote_never_closed_is_an_error_not_a_swallowed_row(keyword_model: Path,
                                                                  tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text('text,label\nfootball tonight,sport\n"chips and dip,food\nmore goals,sport\n',
                     encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(keyword_model), str(table), "--out",
                                       str(tmp_path / "p.csv"), "-q"])
    assert result.exit_code == 1, result.output
    assert ("the quote opened in the record starting on line 3 is never closed" in result.output)
    assert not (tmp_path / "p.csv").exists()
    fixed = tmp_path / "fixed.csv"
    fixed.write_text('text,label\nfootball tonight,sport\n"chips ""and"" dip",food\n'
                     '"more\ngoals",sport\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(keyword_model), str(fixed), "--out",
                                       str(tmp_path / "p.csv"), "-q"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["1", "2", "3"]
