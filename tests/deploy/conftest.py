"""Fixtures of the runtime tests. They need onnx (to build tiny model files) but never torch, so
that they also run in an environment where only `deploy/` is installed."""

from __future__ import annotations

import signal
from pathlib import Path

import onnx
import pytest

from tests.deploy.builders import (
    COLOURS,
    colour_model_proto,
    colour_video_model_proto,
    keyword_model_proto,
    loudness_model_proto,
    write_image,
)

# A suite started in the background by a non-interactive shell (`make test &`) inherits SIGINT
# ignored, and so would every process it starts: Python leaves an ignored SIGINT ignored, so the
# tests that press Ctrl-C on a run would see it finish instead. A handler (not SIG_IGN) is reset
# to the default in an exec'd child, which then installs its KeyboardInterrupt as usual.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def colour_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "colour.onnx"
    onnx.save(colour_model_proto(), path)
    return path


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    """A labelled folder: 3 images per colour class, PNG and JPEG, one nested a level deeper."""
    root = tmp_path / "colours"
    for label, colour in COLOURS.items():
        write_image(root / label / f"{label}_a.png", colour)
        write_image(root / label / f"{label}_b.jpg", colour, (15, 30))
        write_image(root / label / "deeper" / f"{label}_c.png", colour, (9, 9))
    return root


@pytest.fixture(scope="session")
def keyword_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text model: sport or food, by keywords in English, French and Chinese."""
    path = tmp_path_factory.mktemp("model") / "keywords.onnx"
    onnx.save(keyword_model_proto(), path)
    return path


@pytest.fixture(scope="session")
def loudness_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audio model: loud or quiet, by the mean power of 0.25 s windows at 8 kHz."""
    path = tmp_path_factory.mktemp("model") / "loudness.onnx"
    onnx.save(loudness_model_proto(), path)
    return path


@pytest.fixture(scope="session")
def colour_video_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A video model: red, green or blue, by the dominant colour of 4 frames of 16×16."""
    path = tmp_path_factory.mktemp("model") / "colour_video.onnx"
    onnx.save(colour_video_model_proto(), path)
    return path
