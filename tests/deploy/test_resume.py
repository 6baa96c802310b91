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
