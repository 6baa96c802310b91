"""`score --ray`: the same table as a local run, computed by Ray Data actors."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit_deploy.score import score


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_scores_exactly_like_a_local_run(local_ray, colour_model: Path, colour_folder: Path,
                                            keyword_model: Path, tmp_path: Path) -> None:
    (colour_folder / "red" / "broken.png").write_bytes(b"not an image")
    local = score(colour_model, colour_folder, tmp_path / "local.csv", top_k=2, progress=False)
    remote = score(colour_model, colour_folder, tmp_path / "ray.csv", top_k=2, batch_size=3,
                   workers=2, ray="local", progress=False)
    assert (tmp_path / "ray.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert remote.n_failed == local.n_failed == 1

    table = tmp_path / "texts.txt"
    table.write_text("goal match\n\n美食 pizza\n", encoding="utf-8")  # a blank line: an error row
    score(keyword_model, table, tmp_path / "a.jsonl", progress=False)
    score(keyword_model, table, tmp_path / "b.jsonl", ray="local", progress=False)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
