"""The real inputs an export is proven and calibrated on (`toolkit.export.samples`)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.toolkit.conftest import Trained
from toolkit.export.samples import batch_of, calibration_samples, spread


@pytest.mark.parametrize(("count", "n", "expected"), [
    (10, 3, [0, 4, 9]), (3, 10, [0, 1, 2]), (1, 5, [0]), (0, 5, []), (5, 0, []),
])
def test_spread_picks_evenly_from_first_to_last_each_once(count: int, n: int,
                                                          expected: list[int]) -> None:
    assert spread(count, n) == expected


def test_a_batch_stacks_samples_or_concatenates_windows() -> None:
    class Windowed:
        windowed = True

    a, b = np.zeros((2, 4)), np.ones((3, 4))
    assert batch_of(Windowed(), [a, b]).shape == (5, 4)
    assert batch_of(object(), [a, a]).shape == (2, 2, 4)


def test_calibration_reads_training_samples_of_every_class(trained: Trained) -> None:
    samples = calibration_samples(trained.run, trained.data, n=10)
    train_paths = {trained.data / rel for rel, _ in trained.run.split.train}
    assert len(samples) == 10 and set(samples.sources) <= train_paths
    assert set(samples.targets) == set(range(len(trained.run.labels)))
