"""Short labelled sound clips synthesised here (nothing is downloaded): `toolkit data make sounds`.

Six classes of sound events, each at a random pitch, loudness, onset and length over background
noise: `tone` (a sine), `buzz` (a square wave: the same pitches, other harmonics), `chirp_up` and
`chirp_down` (sweeps), `noise` (a burst of filtered noise) and `clicks` (a rhythmic click train).
Clips last 0.6 to 1.0 s and are written at mixed sample rates (8 to 48 kHz) and sample formats
(8/16/24/32-bit integer, 32/64-bit float), some stereo, some FLAC, so that the demo itself
exercises the decoder's resampling, mixing and format handling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.demo.folder import check_maker_args

SOUND_CLASSES: tuple[str, ...] = ("buzz", "chirp_down", "chirp_up", "clicks", "noise", "tone")
RATES = (8000, 16000, 22050, 44100, 48000)
#: WAV sample formats, the common one most often.
WAV_SUBTYPES = ("PCM_16", "PCM_16", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8")


def _event(kind: str, t: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The class's sound over times `t` (seconds from the event's start), peak about 1."""
    top = min(3000.0, 0.4 * rate)  # below Nyquist at every rate
    if kind in ("tone", "buzz"):
        f = rng.uniform(150, top / 3)
        phase = 2 * np.pi * f * t
        return np.sin(phase) if kind == "tone" else np.sign(np.sin(phase)) * 0.6
    if kind in ("chirp_up", "chirp_down"):
        low = rng.uniform(150, top / 4)
        high = low * rng.uniform(2.0, 4.0)
        f0, f1 = (low, high) if kind == "chirp_up" else (high, low)
        duration = max(t[-1], 1e-3)
        k = (f1 / f0) ** (1 / duration)  # exponential sweep from f0 to f1
        return np.sin(2 * np.pi * f0 * (k**t - 1) / np.log(k))
    if kind == "noise":
        white = rng.standard_normal(len(t))
        width = rng.integers(2, 12)  # a moving average: from bright to dull noise
        return np.convolve(white, np.ones(width) / width, mode="same") * 1.5
    # clicks: short decaying impulses at a steady rate
    out = np.zeros(len(t))
    period = 1.0 / rng.uniform(5, 14)
    decay = np.exp(-np.arange(int(0.004 * rate)) / (0.0008 * rate))
    for start in np.arange(rng.uniform(0, period), t[-1] if len(t) else 0, period):
        i = int(start * rate)
        piece = decay[: len(out) - i]
        out[i : i + len(piece)] += piece * rng.choice([-1.0, 1.0])
    return out


def _clip(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    rate = int(rng.choice(RATES))
    length = rng.uniform(0.6, 1.0)
    n = int(length * rate)
    event_len = rng.uniform(0.25, 0.55) * length
    onset = rng.uniform(0, length - event_len)
    t = np.arange(int(event_len * rate)) / rate
    event = _event(kind, t, rate, rng)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms in and out: no clicks
    signal = np.zeros(n)
    start = int(onset * rate)
    signal[start : start + len(event)] = (event * fade)[: n - start]
    signal *= rng.uniform(0.1, 0.8)
    snr_db = rng.uniform(8, 30)
    power = np.mean((event * fade * signal.max()) ** 2) + 1e-12
    signal += rng.standard_normal(n) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(signal, -0.99, 0.99), rate


def make_sounds(out: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write `per_class` clips of each of SOUND_CLASSES to `out/<class>/<class>_NNNNN.wav|flac`.

    Args:
        out: A folder that does not exist yet or is empty.
        per_class: Clips per class.
        seed: Seed; the same seed writes the same samples (libsndfile stamps float WAV files
            with the time they were written, so their bytes differ there).

    Returns:
        The number of files written.
    """
    import soundfile as sf

    out = check_maker_args("make_sounds", out, per_class, seed)
    written = 0
    for class_index, kind in enumerate(SOUND_CLASSES):
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            # One generator per clip: a clip does not depend on per_class or on the order.
            rng = np.random.default_rng([seed, class_index, i])
            signal, rate = _clip(kind, rng)
            if rng.random() < 0.25:  # stereo, the channels at slightly different levels
                signal = np.stack([signal, signal * rng.uniform(0.6, 1.0)], axis=1)
            if rng.random() < 0.2:
                path, fmt, subtype = folder / f"{kind}_{i:05d}.flac", "FLAC", "PCM_16"
            else:
                subtype = str(rng.choice(WAV_SUBTYPES))
                path, fmt = folder / f"{kind}_{i:05d}.wav", "WAV"
            sf.write(path, signal.astype(np.float32), rate, format=fmt, subtype=subtype)
            written += 1
    return written
