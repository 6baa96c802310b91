"""`toolkit export` and `toolkit package` on a full disk (a file size limit): they fail, leave
what was at the destination as it was, and leave no half-written file or temporary litter."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tests.deploy.builders import colour_model_proto
from tests.deploy.processes import file_size_limit, run, toolkit
from tests.toolkit.conftest import Trained
from toolkit.packaging import package_model
from toolkit_deploy.cli import EXIT_FATAL


def test_export_on_a_full_disk_leaves_the_earlier_model_and_no_litter(trained: Trained,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    earlier = b"an earlier model file, to be kept byte for byte"
    out.write_bytes(earlier)
    limit = trained.export.path.stat().st_size // 2  # the new model cannot fit
    failed = run(toolkit("export", trained.run.path, "--out", out, "--overwrite"),
                 preexec_fn=file_size_limit(limit))
    assert failed.returncode == EXIT_FATAL, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr
    for words in ("Cannot write", "File too large",
                  "the disk is full or a file size limit was reached", f"{out} was not replaced"):
        assert words in failed.stderr, (words, failed.stderr[-2000:])
    assert out.read_bytes() == earlier
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no staging folder left


@pytest.mark.parametrize("fails", ["model wheel", "runtime wheel"])
def test_package_on_a_full_disk_leaves_dist_as_it_was(tmp_path: Path, fails: str) -> None:
    model = tmp_path / "colours.onnx"
    onnx.save(colour_model_proto(), model)
    sizes = package_model(model, tmp_path / "sizes", "colours", version="1.0.0")
    model_size = sizes.model_wheel.stat().st_size
    runtime_size = sizes.runtime_wheel.stat().st_size
    assert model_size < runtime_size  # so that a limit between them fails only the second
    limit = model_size // 2 if fails == "model wheel" else (model_size + runtime_size) // 2

    dist = tmp_path / "dist"
    dist.mkdir()
    earlier = {dist / sizes.model_wheel.name: b"an earlier wheel of the same name",
               dist / "other-2.0-py3-none-any.whl": b"another package's wheel"}
    for path, data in earlier.items():
        path.write_bytes(data)
    failed = run(toolkit("package", model, "--out", dist, "--name", "colours", "--version",
                         "1.0.0"), preexec_fn=file_size_limit(limit))
    assert failed.returncode == EXIT_FATAL, failed.stderr
    assert "Traceback" not in failed.stderr
    wheel = sizes.model_wheel.name if fails == "model wheel" else sizes.runtime_wheel.name
    for words in (f"Cannot write {dist / wheel}.partial", "File too large",
                  "the disk is full or a file size limit was reached"):
        assert words in failed.stderr, (words, failed.stderr)
    # Neither wheel is there (not even the complete first one), the earlier ones are intact.
    assert sorted(dist.iterdir()) == sorted(earlier)
    assert {path: path.read_bytes() for path in earlier} == earlier
