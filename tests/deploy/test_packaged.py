"""The runtime side of model packages: the integrity check and the `NAME` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.deploy.builders import COLOURS, write_image
from toolkit_deploy.cli import main
from toolkit_deploy.errors import ModelFormatError
from toolkit_deploy.packaged import load_checked, package_cli, sha256_of


def test_a_modified_model_is_refused(colour_model: Path, tmp_path: Path) -> None:
    sha = sha256_of(colour_model)
    assert load_checked(colour_model, sha).labels == ("red", "green", "blue")
    copy = tmp_path / "model.onnx"
    copy.write_bytes(colour_model.read_bytes() + b"\0")
    with pytest.raises(ModelFormatError, match="was modified after packaging.*Reinstall"):
        load_checked(copy, sha)


def test_package_command_scores_like_toolkit_score(colour_model: Path, tmp_path: Path) -> None:
    sha = sha256_of(colour_model)

    def load(**kwargs):
        return load_checked(colour_model, sha, **kwargs)

    cli = package_cli("colours", "1.2.3", load, lambda: colour_model, sha)
    for label, colour in COLOURS.items():
        write_image(tmp_path / "in" / f"{label}.png", colour)
    (tmp_path / "in" / "bad.png").write_bytes(b"not an image")
    ours = CliRunner().invoke(cli, ["score", str(tmp_path / "in"), "--out",
                                    str(tmp_path / "a.csv"), "--top-k", "2", "-q"])
    theirs = CliRunner().invoke(main, ["score", str(colour_model), str(tmp_path / "in"),
                                       "--out", str(tmp_path / "b.csv"), "--top-k", "2", "-q"])
    assert ours.exit_code == theirs.exit_code == 3, ours.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    info = CliRunner().invoke(cli, ["info", "--json"])
    assert info.exit_code == 0, info.output
    details = json.loads(info.output)
    assert details["version"] == "1.2.3" and details["integrity"] == "ok"
    assert details["labels"] == ["red", "green", "blue"]
    assert CliRunner().invoke(cli, ["--version"]).output.strip() == "colours, version 1.2.3"
