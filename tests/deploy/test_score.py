import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.score import columns, score


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_scores_a_folder_recursively_in_sorted_order(colour_model: Path, colour_folder: Path,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    summary = score(colour_model, colour_folder, out, progress=False)
    rows = read_csv(out)
    assert [r["path"] for r in rows] == sorted(r["path"] for r in rows)
    assert len(rows) == summary.n_files == summary.n_scored == 9 and summary.n_failed == 0
    for r in rows:
        assert r["label"] == r["path"].split("/")[0]  # the folder is the true colour
        assert 0.5 < float(r["score"]) <= 1 and r["error"] == ""
    assert "blue/deeper/blue_c.png" in {r["path"] for r in rows}
    assert not (tmp_path / "preds.csv.partial").exists()


def test_corrupt_files_become_error_rows_and_the_run_goes_on(colour_model: Path,
                                                             colour_folder: Path,
                                                             tmp_path: Path) -> None:
    (colour_folder / "red" / "zero.png").write_bytes(b"")
    (colour_folder / "green" / "noise.jpg").write_bytes(b"\x00garbage" * 100)
    good = (colour_folder / "blue" / "blue_a.png").read_bytes()
    (colour_folder / "blue" / "truncated.png").write_bytes(good[: len(good) // 2])
    (colour_folder / "blue" / "folder.png").mkdir()
    out = tmp_path / "preds.jsonl"
    result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder),
                                       "--out", str(out), "--batch-size", "2"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "scored 9/13 inputs, 4 failed" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    errors = {r["path"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"red/zero.png", "green/noise.jpg", "blue/truncated.png",
                           "blue/folder.png"}
    assert "empty" in errors["red/zero.png"]
    assert "cannot identify" in errors["green/noise.jpg"]
    assert "directory" in errors["blue/folder.png"] or "regular file" in errors["blue/folder.png"]
    assert all(r["label"] == "" and r["score"] == "" for r in rows if r["error"])
    assert all(r["label"] == r["path"].split("/")[0] for r in rows if not r["error"])


def test_top_k_columns(colour_model: Path, colour_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    score(colour_model, colour_folder, out, top_k=3, progress=False)
    rows = read_csv(out)
    assert list(rows[0]) == columns(3)
    for r in rows:
        scores = [float(r[f"top{k}_score"]) for k in (1, 2, 3)]
        assert scores == sorted(scores, reverse=True)
        assert r["top1_label"] == r["label"]
        assert abs(sum(scores) - 1) < 1e-5


def test_existing_output_is_never_overwritten_silently(colour_model: Path, colour_folder: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    out.write_text("precious")
    result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder),
                                       "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert out.read_text() == "precious"
    result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder),
                                       "--out", str(out), "--overwrite"])
    assert result.exit_code == 0 and len(read_csv(out)) == 9


def test_other_files_are_reported_not_scored(colour_model: Path, colour_folder: Path,
                                             tmp_path: Path) -> None:
    (colour_folder / "notes.txt").write_text("hi")
    (colour_folder / ".DS_Store").write_bytes(b"x")
    summary = score(colour_model, colour_folder, tmp_path / "p.csv", progress=False)
    assert summary.n_files == 9
    assert "ignored 2 files" in summary.describe() and ".txt" in summary.ignored


def test_single_file_input(colour_model: Path, tmp_path: Path) -> None:
    image = write_image(tmp_path / "in" / "one.png", COLOURS["green"])
    score(colour_model, image, tmp_path / "p.csv", progress=False)
    assert [(r["path"], r["label"]) for r in read_csv(tmp_path / "p.csv")] == [("one.png", "green")]


@pytest.mark.parametrize(("out", "match"), [("p.xlsx", "unsupported extension"),
                                            ("missing/p.csv", "does not exist")])
def test_bad_outputs_are_refused_up_front(colour_model: Path, colour_folder: Path,
                                          tmp_path: Path, out: str, match: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        score(colour_model, colour_folder, tmp_path / out, progress=False)


def test_missing_input_is_fatal(colour_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["score", str(colour_model), str(tmp_path / "nope"),
                                       "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "p.csv").exists()


def test_probs_parquet_and_the_summary_beside_the_table(colour_model: Path, colour_folder: Path,
                                                        tmp_path: Path) -> None:
    import json

    import pyarrow.parquet as pq

    (colour_folder / "red" / "broken.png").write_bytes(b"nope")
    summary = score(colour_model, colour_folder, tmp_path / "p.parquet", top_k=2, probs=True,
                    progress=False)
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.column_names == ["path", "label", "score", "error", "top1_label", "top1_score",
                                  "top2_label", "top2_score", "prob_red", "prob_green",
                                  "prob_blue"]
    assert str(table.schema.field("prob_red").type) == "double"
    rows = table.to_pylist()
    assert len(rows) == 10 and summary.n_failed == 1
    broken = next(r for r in rows if r["path"] == "red/broken.png")
    assert broken["label"] is None and broken["score"] is None and broken["error"]
    good = [r for r in rows if r["label"]]
    for r in good:
        assert abs(r["prob_red"] + r["prob_green"] + r["prob_blue"] - 1) < 1e-5
        assert r["score"] == max(r["prob_red"], r["prob_green"], r["prob_blue"])
    sidecar = json.loads((tmp_path / "p.parquet.summary.json").read_text())
    assert (sidecar["n_files"], sidecar["n_failed"], sidecar["options"]["probs"]) == (10, 1, True)
    assert sidecar["model"] == str(colour_model) and sidecar["files_per_second"] > 0
    assert not list(tmp_path.glob("*.partial"))


def test_csv_safe_escapes_cells_a_spreadsheet_would_run_as_formulas(tmp_path: Path) -> None:
    import onnx

    from tests.deploy.builders import colour_model_proto

    labels = ("=cmd|' /C calc'!A0", "+green", "blue")
    onnx.save(colour_model_proto(labels=labels), tmp_path / "m.onnx")
    folder = tmp_path / "in"
    for name, colour in (("=HYPERLINK(1).png", COLOURS["red"]), ("-x.png", COLOURS["green"]),
                         ("@y.png", COLOURS["blue"]), ("plain.png", COLOURS["blue"])):
        write_image(folder / name, colour)
    args = ["score", str(tmp_path / "m.onnx"), str(folder), "--top-k", "1", "-q"]
    raw = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "raw.csv")])
    safe = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "safe.csv"), "--csv-safe"])
    assert raw.exit_code == 0 and safe.exit_code == 0, raw.output + safe.output
    with open(tmp_path / "raw.csv", newline="") as f:
        raw_rows = list(csv.DictReader(f))
    with open(tmp_path / "safe.csv", newline="") as f:
        safe_rows = list(csv.DictReader(f))
    assert [r["path"] for r in raw_rows] == ["-x.png", "=HYPERLINK(1).png", "@y.png", "plain.png"]
    assert [r["path"] for r in safe_rows] == ["'-x.png", "'=HYPERLINK(1).png", "'@y.png",
                                              "plain.png"]
    assert [r["label"] for r in safe_rows] == ["'+green", "'=cmd|' /C calc'!A0", "blue", "blue"]
    assert [r["top1_label"] for r in safe_rows] == [r["label"] for r in safe_rows]
    assert [r["score"] for r in safe_rows] == [r["score"] for r in raw_rows]  # numbers as they are
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "p.jsonl"), "--csv-safe"])
    assert refused.exit_code == 1 and "--csv-safe" in refused.output
    assert not (tmp_path / "p.jsonl").exists()
