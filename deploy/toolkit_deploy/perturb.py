"""Corruptions for robustness testing, applied after decoding (for text: to the text, before it is
tokenised), seeded per input so that a run is repeatable in any order.

Each perturbation has a default strength, in its own unit:

    image  gaussian_noise (std, share of 255) · blur (radius, pixels) · brightness (factor - 1)
           · jpeg (quality, 1–95)
    audio  noise (SNR, dB) · gain (dB) · shift (seconds) — each model input (window) alike
    text   typos (share of characters) · word_dropout (share of words)
    video  frame_drop (share of frames) · noise (std, share of 255)
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def _noise(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noisy = x.astype(np.float32) + rng.normal(0, std * 255, x.shape)
    return np.clip(noisy.round(), 0, 255).astype(np.uint8)


def _blur(x: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageFilter

    image = Image.fromarray(x[:, :, 0] if x.shape[2] == 1 else x)
    out = np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8)
    return out.reshape(x.shape).copy()


def _brightness(x: np.ndarray, change: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(x.astype(np.float32) * (1 + change), 0, 255).round().astype(np.uint8)


def _jpeg(x: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(x[:, :, 0] if x.shape[2] == 1 else x).save(
        buffer, format="JPEG", quality=int(np.clip(quality, 1, 95)))
    out = np.asarray(Image.open(buffer), dtype=np.uint8)
    return out.reshape(x.shape).copy()


def _audio_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = max(float(np.mean(x.astype(np.float64) ** 2)), 1e-10)
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), x.shape)
    return (x + noise).astype(np.float32)


def _gain(x: np.ndarray, db: float, rng: np.random.Generator) -> np.ndarray:
    return (x * 10 ** (db / 20)).astype(np.float32)


def _shift(x: np.ndarray, seconds: float, rng: np.random.Generator, rate: int = 16000
           ) -> np.ndarray:
    steps = int(round(seconds * rate))
    out = np.zeros_like(x)
    if steps >= x.shape[-1]:
        return out
    out[..., steps:] = x[..., : x.shape[-1] - steps]  # later by `seconds`, silence before
    return out


def _typos(text: str, share: float, rng: np.random.Generator) -> str:
    chars = list(text)
    letters = [i for i, c in enumerate(chars) if not c.isspace()]
    if not letters:
        return text
    count = max(1, int(round(share * len(letters))))
    for i in sorted(rng.choice(letters, size=min(count, len(letters)), replace=False),
                    reverse=True):
        kind = rng.integers(3)
        if kind == 0:
            del chars[i]  # dropped
        elif kind == 1 and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]  # swapped with the next
        else:
            chars.insert(i, chars[i])  # doubled
    return "".join(chars) or text


def _word_dropout(text: str, share: float, rng: np.random.Generator) -> str:
    words = text.split()
    if len(words) < 2:
        return text
    drop = rng.random(len(words)) < share
    if drop.all():
        drop[rng.integers(len(words))] = False  # never an empty text
    if not drop.any():
        drop[rng.integers(len(words))] = True  # always a change
    return " ".join(w for w, d in zip(words, drop, strict=True) if not d)


def _frame_drop(x: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    out = x.copy()
    dropped = rng.random(len(x)) < share
    dropped[0] = False
    if not dropped.any() and len(x) > 1:
        dropped[rng.integers(1, len(x))] = True
    for t in np.nonzero(dropped)[0]:
        out[t] = out[t - 1]  # a frame lost: the previous one stays on screen
    return out


@dataclass(frozen=True)
class Perturbation:
    name: str
    modality: str
    default: float
    unit: str
    apply: Callable[[Any, float, np.random.Generator], Any]


PERTURBATIONS: dict[tuple[str, str], Perturbation] = {
    (p.modality, p.name): p for p in [
        Perturbation("gaussian_noise", "image", 0.1, "std as a share of 255", _noise),
        Perturbation("blur", "image", 1.5, "Gaussian radius in pixels", _blur),
        Perturbation("brightness", "image", 0.5, "factor - 1", _brightness),
        Perturbation("jpeg", "image", 20, "JPEG quality", _jpeg),
        Perturbation("noise", "audio", 10, "SNR in dB", _audio_noise),
        Perturbation("gain", "audio", -20, "dB", _gain),
        Perturbation("shift", "audio", 0.2, "seconds", _shift),
        Perturbation("typos", "text", 0.1, "share of characters", _typos),
        Perturbation("word_dropout", "text", 0.3, "share of words", _word_dropout),
        Perturbation("frame_drop", "video", 0.3, "share of frames", _frame_drop),
        Perturbation("noise", "video", 0.1, "std as a share of 255", _noise),
    ]
}


def perturbations(modality: str) -> list[Perturbation]:
    return [p for (m, _), p in PERTURBATIONS.items() if m == modality]


def parse_perturbations(texts: tuple[str, ...], modality: str) -> list[tuple[Perturbation, float]]:
    """`name[:strength]` (or `all`, every one of the modality at its default) → perturbations.

    Raises:
        ValueError: An unknown name (the message lists the modality's) or a bad strength.
    """
    chosen = []
    for text in texts:
        if text == "all":
            chosen += [(p, float(p.default)) for p in perturbations(modality)]
            continue
        name, _, raw = text.partition(":")
        if (modality, name) not in PERTURBATIONS:
            valid = ", ".join(p.name for p in perturbations(modality))
            raise ValueError(f"Unknown perturbation {name!r} for a {modality} model; valid: "
                             f"{valid} (or all).")
        p = PERTURBATIONS[(modality, name)]
        try:
            strength = float(raw) if raw else float(p.default)
        except ValueError as e:
            raise ValueError(f"--perturb {text}: the strength must be a number ({p.unit}).") from e
        chosen.append((p, strength))
    return chosen


class PerturbedDecoder:
    """A decoder whose output (for text: whose text) is corrupted, seeded by (seed, input)."""

    isolate = False  # in threads: the perturbation must run where the decoding does

    def __init__(self, decoder: Any, perturbation: Perturbation, strength: float, seed: int):
        self.decoder, self.perturbation, self.strength, self.seed = (
            decoder, perturbation, strength, seed)
        self.modality, self.extensions = decoder.modality, decoder.extensions
        self.windowed = getattr(decoder, "windowed", False)
        self.spec = decoder.spec

    def _rng(self, source: Any) -> np.random.Generator:
        key = zlib.crc32(f"{self.perturbation.name}\0{source!r}".encode())
        return np.random.default_rng([self.seed, key])

    def __call__(self, source: Any) -> np.ndarray:
        rng = self._rng(source)
        p = self.perturbation
        if self.modality == "text":
            return self.decoder.tokenize(p.apply(self.decoder.read(source), self.strength, rng))
        decoded = self.decoder(source)
        if p.name == "shift":
            return _shift(decoded, self.strength, rng, self.spec.sample_rate)
        if self.modality == "image":
            return p.apply(decoded, self.strength, rng)
        return np.stack([p.apply(x, self.strength, rng) for x in decoded]) if (
            self.modality == "audio") else p.apply(decoded, self.strength, rng)
