"""`toolkit sweep`: every trial trained on data decoded once, a sorted table, resumption."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.demo.comments import make_comments
from toolkit.sweep import parse_grid, plan_trials, split_values, sweep
from toolkit.training import data as training_data
from toolkit_deploy.cli import main

BASE = {"train.epochs": 2, "data.vocab_size": 200, "data.max_length": 32,
        "model.embed_dim": 16}


@pytest.fixture(scope="module")
def comments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("comments") / "data"
    make_comments(root, per_class=15, seed=0)
    return root


def test_grid_parsing() -> None:
    assert split_values("0.1, 0.01") == ["0.1", "0.01"]
    assert split_values('[64,32],[16],"a,b"') == ["[64,32]", "[16]", '"a,b"']
    axes = parse_grid(("optim.lr=0.1,0.01", "model.hidden=[64,32],[]"))
    assert axes == {"optim.lr": [0.1, 0.01], "model.hidden": [[64, 32], []]}
    assert len(plan_trials(axes, None, 0)) == 4
    assert plan_trials(axes, 2, 0) == plan_trials(axes, 2, 0) and len(plan_trials(axes, 2, 0)) == 2
    with pytest.raises(ValueError, match="section.key=value1,value2"):
        parse_grid(("optim.lr",))


def test_four_trials_sorted_shared_data_and_resumed(comments: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = []
    original = training_data.CachedFiles.__init__

    def counting(self, files):  # count how often a split is decoded
        decoded.append(len(files))
        original(self, files)

    monkeypatch.setattr(training_data.CachedFiles, "__init__", counting)
    training_data._SHARED.clear()
    out = tmp_path / "sweep"
    grid = ("optim.lr=0.02,0.001", "model.activation=relu,tanh")
    rows = sweep("text-bag", comments, out, grid, base=BASE, device="cpu", progress=False)
    assert len(rows) == 4 and len(decoded) == 2  # train and val, decoded once for 4 trials
    values = [r["val_accuracy"] for r in rows]
    assert values == sorted(values, reverse=True)
    assert (out / "best").resolve() == (out / rows[0]["trial"]).resolve()
    with open(out / "sweep.csv", newline="") as f:
        assert [r["trial"] for r in csv.DictReader(f)] == [r["trial"] for r in rows]
    assert json.loads((out / "sweep.json").read_text())["table"][0]["trial"] == rows[0]["trial"]

    # Interrupted: one trial did not finish. Started again, only that one trains.
    info = out / "trial-002" / "run.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "finished": False}))
    result = CliRunner().invoke(main, ["sweep", "text-bag", "--data", str(comments), "--out",
                                       str(out), "--grid", grid[0], "--grid", grid[1], "-q",
                                       *[f"--set={k}={v}" for k, v in BASE.items()],
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "(3 finished trials skipped)" in result.output
    with pytest.raises(ValueError, match="holds a different sweep"):
        sweep("text-bag", comments, out, ("optim.lr=0.5",), base=BASE, progress=False)
