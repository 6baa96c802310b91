"""Audio end to end: in-graph log-mel against NumPy, augmentation, demo data, train → export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from toolkit.demo.sounds import SOUND_CLASSES, make_sounds
from toolkit.export.onnx_export import export_run
from toolkit.models.audio import LOG_FLOOR, LogMel
from toolkit.recipe import load_recipe
from toolkit.training.augment import audio_gain, audio_noise, shift_audio
from toolkit.training.trainer import train
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.score import score

TINY_AUDIO = {"model.channels": [8, 16, 24], "model.hidden": [32], "train.epochs": 8,
              "train.batch_size": 8,
              "data.n_mels": 32, "optim.warmup_epochs": 0}


def numpy_log_mel(wave: np.ndarray, rate: int, n_fft: int, hop: int, n_mels: int, f_min: float,
                  f_max: float) -> np.ndarray:
    """The log-mel spectrogram computed independently: framing, periodic Hann, rfft, triangles
    by interpolation on the HTK mel scale."""
    frames = np.lib.stride_tricks.sliding_window_view(wave.astype(np.float64), n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)

    def mel(f: float) -> float:
        return 2595 * np.log10(1 + f / 700)

    points = [700 * (10 ** (m / 2595) - 1)
              for m in np.linspace(mel(f_min), mel(f_max), n_mels + 2)]
    bank = np.stack([np.interp(freqs, points[i : i + 3], [0, 1, 0], left=0, right=0)
                     for i in range(n_mels)], axis=1)
    return np.log(np.maximum(power @ bank, LOG_FLOOR)).T  # n_mels × frames


def test_in_graph_log_mel_matches_numpy(tmp_path: Path) -> None:
    rate, n_fft, hop, n_mels = 16000, 512, 160, 40
    features = LogMel(rate, n_fft, hop, n_mels, 20.0, 8000.0).eval()
    path = tmp_path / "logmel.onnx"
    torch.onnx.export(features, (torch.zeros(2, rate),), path, dynamo=True, input_names=["x"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=18)
    rng = np.random.default_rng(0)
    t = np.arange(rate) / rate
    waves = np.stack([0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(rate),
                      0.3 * np.sign(np.sin(2 * np.pi * 150 * t)),
                      np.where(t < 0.5, 0.2 * rng.standard_normal(rate), 0.0)]).astype(np.float32)
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {"x": waves})[0]
    assert got.shape == (3, 1, n_mels, 1 + (rate - n_fft) // hop)
    for wave, graph in zip(waves, got[:, 0], strict=True):
        expected = numpy_log_mel(wave, rate, n_fft, hop, n_mels, 20.0, 8000.0)
        np.testing.assert_allclose(graph, expected, atol=2e-3, rtol=1e-4)
    assert (got[2, 0, :, -10:] == np.float32(np.log(LOG_FLOOR))).all()  # silence: the floor


def test_audio_augmentations_change_their_input_and_repeat_with_a_seed() -> None:
    batch = torch.sin(torch.arange(4 * 800, dtype=torch.float32).view(4, 800) / 7)

    def run(fn, *args):
        return fn(batch, *args, torch.Generator().manual_seed(3))

    for fn, arg in ((shift_audio, 100), (audio_gain, 6.0), (audio_noise, 10.0)):
        out = run(fn, arg)
        assert out.shape == batch.shape and not torch.equal(out, batch), fn.__name__
        assert torch.equal(out, run(fn, arg)), fn.__name__
        assert torch.equal(run(fn, 0), batch), fn.__name__  # 0 turns it off
    shifted = run(shift_audio, 100)
    for row, original in zip(shifted, batch, strict=True):
        # A shifted copy: some offset in [-100, 100] maps the original onto it, silence around.
        offsets = [s for s in range(-100, 101)
                   if torch.equal(row[max(s, 0) : 800 + min(s, 0)],
                                  original[max(-s, 0) : 800 - max(s, 0)])]
        assert offsets


def test_sounds_demo_data_mixes_rates_formats_and_channels(tmp_path: Path) -> None:
    assert make_sounds(tmp_path / "a", per_class=8, seed=5) == 8 * len(SOUND_CLASSES)
    make_sounds(tmp_path / "b", per_class=8, seed=5)
    files = sorted((tmp_path / "a").rglob("*.*"))
    assert sorted({p.parent.name for p in files}) == sorted(SOUND_CLASSES)
    infos = [sf.info(p) for p in files]
    assert len({i.samplerate for i in infos}) >= 3
    assert {i.channels for i in infos} == {1, 2}
    assert {i.format for i in infos} == {"WAV", "FLAC"}
    assert len({i.subtype for i in infos if i.format == "WAV"}) >= 3
    assert all(0.59 <= i.duration <= 1.0 for i in infos)
    for p in files:  # same seed, same samples (float WAVs carry a write-time stamp)
        again = tmp_path / "b" / p.relative_to(tmp_path / "a")
        assert sf.info(again).subtype == sf.info(p).subtype
        np.testing.assert_array_equal(sf.read(again)[0], sf.read(p)[0])


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sounds") / "data"
    make_sounds(root, per_class=12, seed=2)
    return root


def test_train_export_and_score_sounds(sounds: Path, tmp_path: Path) -> None:
    run = train(load_recipe("audio-cnn", TINY_AUDIO), sounds, tmp_path / "run", device="cpu",
                progress=False)
    assert json.loads((run.path / "results.json").read_text())["accuracy"] > 1 / len(
        SOUND_CLASSES)
    result = export_run(run.path, tmp_path / "model.onnx")
    report = result.report
    assert report.passed and report.top1_agreement == 1.0 and report.max_abs_diff <= 1e-4
    predictor = Predictor(result.path)
    assert predictor.spec.input_spec["shape"] == ["batch", 16000]
    # A clip of 2.2 s is scored as 4 windows whose probabilities are averaged.
    long = tmp_path / "in" / "long.wav"
    long.parent.mkdir()
    first = sorted((sounds / "tone").iterdir())[0]
    wave, rate = sf.read(first, always_2d=True)
    sf.write(long, np.tile(wave, (3, 1)), rate)
    summary = score(predictor, long.parent, tmp_path / "p.csv", progress=False)
    assert summary.n_scored == 1
    windows = predictor.decode(long)
    assert len(windows) == 1 + int(np.ceil((len(wave) * 3 / rate * 16000 - 16000) / 8000))
    with open(tmp_path / "p.csv", newline="") as f:
        row = next(csv.DictReader(f))
    expected = predictor.run(windows)[1].mean(axis=0)
    assert row["label"] == predictor.labels[expected.argmax()]
    assert float(row["score"]) == pytest.approx(float(expected.max()), rel=1e-5)
