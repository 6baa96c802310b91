"""Nothing lost: an interrupted scoring run keeps its committed rows and resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy import tablewriter
from toolkit_deploy.cli import EXIT_INTERRUPTED
from toolkit_deploy.decoders.image import ImageDecoder
from toolkit_deploy.packaged import package_cli
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score


class Interrupting(ImageDecoder):
    """Stands in for Ctrl-C arriving while the file named `stop*` is decoded."""

    def __call__(self, source: Any) -> np.ndarray:
        if Path(source).name.startswith("stop"):
            raise KeyboardInterrupt
        return super().__call__(source)


@pytest.fixture
def many(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for i in range(60):
        label = list(COLOURS)[i % 3]
        write_image(folder / f"{i:03d}_{label}.png", COLOURS[label], (8, 8))
    write_image(folder / "stop.png", COLOURS["red"], (8, 8))  # sorts after the 60 others
    for i in range(60, 80):
        write_image(folder / f"z{i:03d}.png", COLOURS["blue"], (8, 8))
    (folder / "z050_broken.png").write_bytes(b"broken")
    return folder


def test_interrupted_run_resumes_to_the_same_table(colour_model: Path, many: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tablewriter, "CHUNK", 16)
    monkeypatch.setattr(tablewriter, "COMMIT_SECONDS", 0.0)
    reference = tmp_path / "all.csv"
    score(colour_model, many, reference, top_k=2, batch_size=4, progress=False)

    out = tmp_path / "p.csv"
    predictor = Predictor(colour_model)
    predictor.decoder = Interrupting(predictor.spec.preprocess)
    with pytest.raises(KeyboardInterrupt):
        score(predictor, many, out, top_k=2, batch_size=4, progress=False)
    partial, log = tablewriter.partial_paths(out)
    state = json.loads(log.read_text())
    assert not out.exists() and 0 < state["rows"] < 82
    with open(partial, "a", encoding="utf-8") as f:
        f.write("z999.png,red,0.9")  # as if killed in the middle of writing a row

    with pytest.raises(FileExistsError, match="--resume to continue it"):
        score(colour_model, many, out, top_k=2, progress=False)
    with pytest.raises(ValueError, match="other options"):
        score(colour_model, many, out, top_k=1, resume=True, progress=False)
    summary = score(colour_model, many, out, top_k=2, batch_size=4, resume=True, progress=False)
    assert out.read_bytes() == reference.read_bytes()  # no duplicate, no gap, same rows
    assert summary.n_files == 82 and summary.n_failed == 1
    sidecar = json.loads((tmp_path / "p.csv.summary.json").read_text())
    assert sidecar["resumed_after"] == state["rows"]
    assert not partial.exists() and not log.exists()
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        score(colour_model, many, tmp_path / "q.csv", resume=True, progress=False)


def test_the_command_exits_4_when_interrupted(colour_model: Path, many: Path,
                                              tmp_path: Path) -> None:
    def load(**kwargs: Any) -> Predictor:
        predictor = Predictor(colour_model)
        predictor.decoder = Interrupting(predictor.spec.preprocess)
        return predictor

    cli = package_cli("colours", "1.0", load, lambda: colour_model, "")
    result = CliRunner().invoke(cli, ["score", str(many), "--out", str(tmp_path / "p.jsonl"),
                                      "-q"])
    assert result.exit_code == EXIT_INTERRUPTED
    assert "--resume" in result.output and (tmp_path / "p.jsonl.partial").exists()


def test_parquet_tables_cannot_be_resumed(colour_model: Path, many: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Parquet table cannot be resumed"):
        score(colour_model, many, tmp_path / "p.parquet", resume=True, progress=False)


def test_resume_on_a_finished_table_of_the_same_run_is_a_no_op(colour_model: Path, many: Path,
                                                               tmp_path: Path) -> None:
    from tests.deploy.processes import run, toolkit
    from toolkit_deploy.cli import EXIT_PARTIAL

    out = tmp_path / "p.csv"
    command = toolkit("score", colour_model, many, "--out", out, "--top-k", "2", "-q")
    first = run(command, timeout=60)
    assert first.returncode == EXIT_PARTIAL, first.stderr  # z050_broken.png
    table, summary = out.read_bytes(), (tmp_path / "p.csv.summary.json").read_bytes()
    stamp = out.stat().st_mtime_ns
    again = run([*command, "--resume"], timeout=60)  # a retried pipeline step
    assert again.returncode == EXIT_PARTIAL, again.stderr  # the finished run's exit code
    assert f"{out} is already complete (81/82 inputs scored, 1 failed)" in again.stderr
    assert out.read_bytes() == table and out.stat().st_mtime_ns == stamp
    assert (tmp_path / "p.csv.summary.json").read_bytes() == summary
    # Other options are another run: its table is not this one.
    other = run([*toolkit("score", colour_model, many, "--out", out, "-q"), "--resume"],
                timeout=60)
    assert other.returncode == 1 and "does not record this run" in other.stderr
    # A table changed after its run finished is not confirmed.
    out.write_bytes(table.replace(b"red", b"blue", 1))
    edited = run([*command, "--resume"], timeout=60)
    assert edited.returncode == 1 and "was changed after its run finished" in edited.stderr


def test_an_input_changed_under_the_same_name_is_detected(colour_model: Path, many: Path,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(tablewriter, "CHUNK", 16)
    monkeypatch.setattr(tablewriter, "COMMIT_SECONDS", 0.0)
    finished = tmp_path / "done.csv"
    score(colour_model, many, finished, progress=False)
    changed = many / "000_red.png"
    write_image(changed, COLOURS["blue"], (8, 9))  # the same name, other pixels
    with pytest.raises(FileExistsError, match="an input file changed since"):
        score(colour_model, many, finished, resume=True, progress=False)

    out = tmp_path / "p.csv"
    predictor = Predictor(colour_model)
    predictor.decoder = Interrupting(predictor.spec.preprocess)
    with pytest.raises(KeyboardInterrupt):
        score(predictor, many, out, batch_size=4, progress=False)
    write_image(changed, COLOURS["red"], (9, 8))  # changed again, after the interruption
    with pytest.raises(ValueError, match="an input file changed since"):
        score(colour_model, many, out, resume=True, progress=False)


@pytest.mark.parametrize("tamper", [{"rows": 10**9}, {"rows": 3}, {"failed": 10**9},
                                    {"bytes": -1}, {"rows": "many"}, None])
def test_a_tampered_commit_log_is_refused(colour_model: Path, many: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          tamper: dict | None) -> None:
    monkeypatch.setattr(tablewriter, "CHUNK", 16)
    monkeypatch.setattr(tablewriter, "COMMIT_SECONDS", 0.0)
    out = tmp_path / "p.csv"
    predictor = Predictor(colour_model)
    predictor.decoder = Interrupting(predictor.spec.preprocess)
    with pytest.raises(KeyboardInterrupt):
        score(predictor, many, out, batch_size=4, progress=False)
    partial, log = tablewriter.partial_paths(out)
    state = json.loads(log.read_text())
    assert state["rows"] > 3
    log.write_text(json.dumps({**state, **tamper}) if tamper else "{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="altered|not the commit log"):
        score(colour_model, many, out, resume=True, progress=False)
    assert not out.exists() and partial.exists()
