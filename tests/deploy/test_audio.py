"""Audio in the runtime: every format read, resampling, mixing, windows, caps, scoring."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.deploy.builders import AUDIO_RATE, AUDIO_WINDOW, write_sine
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import AudioPreprocess

SPEC = AudioPreprocess(sample_rate=16000, window=0.5, hop=0.25, n_fft=512, hop_length=160,
                       n_mels=32, max_seconds=3.0)


@pytest.fixture(scope="module")
def decoder():
    return create_decoder("audio", SPEC)


def dominant_hz(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


FORMATS = [  # (extension, soundfile format, subtype, tolerance on the amplitude)
    ("wav", "WAV", "PCM_U8", 0.02), ("wav", "WAV", "PCM_16", 1e-3), ("wav", "WAV", "PCM_24", 1e-3),
    ("wav", "WAV", "PCM_32", 1e-3), ("wav", "WAV", "FLOAT", 1e-3), ("wav", "WAV", "DOUBLE", 1e-3),
    ("flac", "FLAC", "PCM_16", 1e-3), ("ogg", "OGG", "VORBIS", 0.1),
    ("mp3", "MP3", "MPEG_LAYER_III", 0.1),
]


@pytest.mark.parametrize("ext, fmt, subtype, tol", FORMATS, ids=[f[2] for f in FORMATS])
@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_every_format_decodes_to_the_same_sine(decoder, tmp_path: Path, ext: str, fmt: str,
                                              subtype: str, tol: float, rate: int) -> None:
    path = write_sine(tmp_path / f"a.{ext}", freq=440, seconds=0.4, rate=rate, fmt=fmt,
                      subtype=subtype)
    windows = decoder(path)
    assert windows.dtype == np.float32 and windows.shape == (1, SPEC.samples)
    wave = windows[0]
    assert abs(dominant_hz(wave, 16000) - 440) <= 2.5  # resampled, not sped up or slowed down
    peak = np.abs(wave[1000:5000]).max()
    assert abs(peak - 0.5) <= tol + 0.01, peak
    # 0.4 s of sound (codecs may add a little delay or padding), then silence to 0.5 s.
    assert np.abs(wave[7000:]).max() <= (tol if fmt in ("OGG", "MP3") else 1e-3)


def test_channels_are_mixed_to_mono(decoder, tmp_path: Path) -> None:
    import soundfile as sf

    t = np.arange(8000) / 16000
    left = 0.5 * np.sin(2 * np.pi * 300 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, -left, left, left], axis=1), 16000,
             subtype="FLOAT")
    np.testing.assert_allclose(decoder(tmp_path / "s.wav")[0], left * 0.5, atol=1e-6)


def test_long_clips_become_overlapping_windows(decoder, tmp_path: Path) -> None:
    import soundfile as sf

    ramp = np.linspace(-0.9, 0.9, int(1.3 * 16000)).astype(np.float32)  # 1.3 s
    sf.write(tmp_path / "long.wav", ramp, 16000, subtype="FLOAT")
    windows = decoder(tmp_path / "long.wav")
    # 0.5 s windows every 0.25 s: starts 0, .25, .5, .75, 1.0 (the last one padded).
    assert windows.shape == (5, 8000)
    for k in range(4):
        np.testing.assert_array_equal(windows[k], ramp[k * 4000 : k * 4000 + 8000])
    np.testing.assert_array_equal(windows[4][:4800], ramp[16000:])
    assert not windows[4][4800:].any()


def test_arrays_bytes_and_errors(decoder, tmp_path: Path) -> None:
    path = write_sine(tmp_path / "a.wav", rate=16000)
    np.testing.assert_array_equal(decoder(path.read_bytes()), decoder(path))
    wave = np.sin(np.arange(4000) / 10).astype(np.float32)
    assert decoder(wave).shape == (1, 8000)
    with pytest.raises(TypeError, match="must be float"):
        decoder((wave * 1000).astype(np.int16))
    long = write_sine(tmp_path / "long.wav", seconds=4.0, rate=8000)
    with pytest.raises(DecodeError, match=r"lasts 4.0 s, over the limit of 3 s"):
        decoder(long)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEnot really" * 10)
    with pytest.raises(DecodeError, match="Cannot decode the file as audio"):
        decoder(junk)
    truncated = tmp_path / "truncated.flac"
    truncated.write_bytes(write_sine(tmp_path / "ok.flac", fmt="FLAC").read_bytes()[:60])
    with pytest.raises(DecodeError):
        decoder(truncated)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty"):
        decoder(tmp_path / "empty.wav")
    with pytest.raises(DecodeError, match="File not found"):
        decoder(tmp_path / "missing.wav")


def test_window_probabilities_are_averaged(loudness_model: Path, tmp_path: Path) -> None:
    import soundfile as sf

    predictor = Predictor(loudness_model)
    # 0.5 s: loud for the first 0.25 s, silent after; windows of 0.25 s every 0.125 s.
    wave = np.zeros(4000, np.float32)
    wave[:2000] = 0.5 * np.sin(np.arange(2000) / 3)
    sf.write(tmp_path / "half.wav", wave, AUDIO_RATE, subtype="FLOAT")
    windows = predictor.decode(tmp_path / "half.wav")
    assert windows.shape == (3, round(AUDIO_RATE * AUDIO_WINDOW))
    expected = predictor.run(windows)[1].mean(axis=0)
    np.testing.assert_allclose(predictor.predict_proba(tmp_path / "half.wav")[0], expected,
                               rtol=1e-6)
    assert 0.2 < expected[0] < 0.8  # one loud window, one quiet, one half loud


def test_score_a_folder_of_sounds(loudness_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write_sine(folder / "loud.wav", amplitude=0.8, rate=44100, channels=2)
    write_sine(folder / "quiet.flac", amplitude=0.01, rate=16000, fmt="FLAC")
    write_sine(folder / "deep" / "loud.mp3", amplitude=0.8, rate=22050, fmt="MP3")
    (folder / "broken.ogg").write_bytes(b"OggS" + bytes(100))
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(main, ["score", str(loudness_model), str(folder), "--out",
                                       str(out), "-q"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    with open(out, newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert {p: r["label"] for p, r in rows.items()} == {
        "broken.ogg": "", "deep/loud.mp3": "loud", "loud.wav": "loud", "quiet.flac": "quiet"}
    assert rows["broken.ogg"]["error"].startswith("DecodeError: ")
