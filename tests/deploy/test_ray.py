"""`score --engine ray`: the same table as a local run, computed by Ray Data actors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit_deploy.cli import EXIT_PARTIAL, EXIT_USAGE, main
from toolkit_deploy.score import score


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_scores_exactly_like_a_local_run(local_ray, colour_model: Path, colour_folder: Path,
                                            keyword_model: Path, tmp_path: Path) -> None:
    # A decoder failure inside an actor is an error row, not a lost block: the tables match.
    (colour_folder / "red" / "broken.png").write_bytes(b"not an image")
    local = score(colour_model, colour_folder, tmp_path / "local.csv", top_k=2, progress=False)
    remote = score(colour_model, colour_folder, tmp_path / "ray.csv", top_k=2, batch_size=3,
                   workers=2, engine="ray", progress=False)
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert remote.n_failed == local.n_failed == 1

    table = tmp_path / "texts.txt"
    table.write_text("goal match\n\n美食 pizza\n", encoding="utf-8")  # a blank line: an error row
    score(keyword_model, table, tmp_path / "a.jsonl", progress=False)
    score(keyword_model, table, tmp_path / "b.jsonl", engine="ray", progress=False)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_nan_outputs_are_the_same_error_rows(local_ray, tmp_path: Path) -> None:
    import onnx

    from tests.deploy.builders import COLOURS, write_image
    from tests.deploy.test_hostile import nan_model_proto

    model = tmp_path / "nan.onnx"
    onnx.save(nan_model_proto(), model)
    for label, colour in COLOURS.items():
        write_image(tmp_path / "in" / f"{label}.png", colour)
    write_image(tmp_path / "in" / "dark.png", (20, 12, 12))  # NaN probabilities
    local = score(model, tmp_path / "in", tmp_path / "local.csv", progress=False)
    remote = score(model, tmp_path / "in", tmp_path / "ray.csv", engine="ray", progress=False)
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert remote.n_failed == local.n_failed == 1


def test_cli_engine_ray_writes_the_local_table(local_ray, colour_model: Path,
                                               colour_folder: Path, tmp_path: Path) -> None:
    (colour_folder / "blue" / "empty.png").write_bytes(b"")
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.jsonl"
        result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder),
                                           "--out", str(out), "--engine", engine, "-q"])
        assert result.exit_code == EXIT_PARTIAL, result.output  # the empty file failed
        outs[engine] = out.read_bytes()
        summary = json.loads(out.with_name(out.name + ".summary.json").read_text())
        assert (summary["n_failed"], summary["n_files"]) == (1, 10)
    assert outs["ray"] == outs["local"]


def test_address_needs_the_ray_engine(colour_model: Path, colour_folder: Path,
                                      tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["score", str(colour_model), str(colour_folder), "--out",
                                       str(tmp_path / "p.csv"), "--address", "ray://head:10001"])
    assert result.exit_code == EXIT_USAGE
    assert "--address is only used with --engine ray" in result.output
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(ValueError, match="only used by the ray engine"):
        score(colour_model, colour_folder, tmp_path / "p.csv", address="ray://head:10001")
    with pytest.raises(ValueError, match="valid engines: local, ray"):
        score(colour_model, colour_folder, tmp_path / "p.csv", engine="spark")


def test_help_documents_the_engines() -> None:
    result = CliRunner().invoke(main, ["score", "--help"])
    assert "--engine [local|ray]" in result.output and "--address ADDR" in result.output
    assert "--ray " not in result.output
