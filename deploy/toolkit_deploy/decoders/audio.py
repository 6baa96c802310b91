"""Audio: decode (WAV, FLAC, OGG, MP3) with soundfile, mix to mono, resample with soxr, window.

The result is float32 K × samples: K ≥ 1 windows of the model's length. A clip shorter than one
window is padded with silence at the end; a longer one is cut into windows `hop` seconds apart
(the last one padded), whose probabilities the runtime averages. The log-mel features are not
computed here: they are part of the exported graph, so every ONNX consumer gets them.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.decoders.reading import reading
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.spec import AudioPreprocess

EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
INSTALL = "pip install 'toolkit-deploy[audio]'"


def _libraries() -> tuple[Any, Any]:
    try:
        import soundfile
        import soxr
    except ImportError as e:
        raise ImportError(f"Audio models need soundfile and soxr: {INSTALL}") from e
    return soundfile, soxr


class AudioDecoder:
    """Turn a sound into the float32 K × samples windows of an `AudioPreprocess` spec.

    Accepts a path, encoded bytes (any format soundfile reads), or a float array already at the
    model's sample rate (samples, or samples × channels).
    """

    modality = "audio"
    extensions = EXTENSIONS
    #: Each source gives K windows; the runtime averages their probabilities.
    windowed = True

    def __init__(self, spec: AudioPreprocess) -> None:
        self.spec = spec
        self.soundfile, self.soxr = _libraries()

    def __call__(self, source: Any) -> np.ndarray:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            with reading(path, "an audio"):
                size = path.stat().st_size
                if not path.is_file():
                    raise DecodeError(f"{path} is not a regular file; expected an audio file.")
                if size == 0:
                    raise DecodeError("The file is empty (0 bytes); expected audio.")
                return self._decode(path, "the file")
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self._decode(io.BytesIO(bytes(source)), "the given bytes")
        if isinstance(source, np.ndarray):
            return self._from_array(source, self.spec.sample_rate)
        raise TypeError("An audio input must be a path, bytes or a float array at the model's "
                        f"sample rate. Got {type(source).__name__}.")

    def _decode(self, file: Any, what: str) -> np.ndarray:
        sf = self.soundfile
        try:
            with sf.SoundFile(file) as f:
                seconds = f.frames / f.samplerate if f.samplerate else math.inf
                if seconds > self.spec.max_seconds:
                    raise DecodeError(
                        f"The audio lasts {seconds:.1f} s, over the limit of "
                        f"{self.spec.max_seconds:g} s; cut it, or raise data.max_seconds in the "
                        "recipe."
                    )
                data = f.read(dtype="float32", always_2d=True)
                rate = f.samplerate
        except sf.LibsndfileError as e:
            raise DecodeError(
                f"Cannot decode {what} as audio ({e.error_string}); expected one of "
                f"{', '.join(EXTENSIONS)} (the content, not just the name)."
            ) from e
        except (RuntimeError, TypeError, ValueError) as e:  # truncated or odd data
            if isinstance(e, DecodeError):
                raise
            raise DecodeError(f"Corrupt or truncated audio: {e}.") from e
        if len(data) == 0:
            raise DecodeError("The audio has no samples.")
        return self._from_array(data, rate)

    def _from_array(self, array: np.ndarray, rate: int) -> np.ndarray:
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"An audio array must be float (samples in [-1, 1]). Got dtype "
                            f"{array.dtype}; divide integer samples by their full scale.")
        if array.ndim not in (1, 2) or array.size == 0:
            raise ValueError(f"An audio array must be samples or samples × channels. Got shape "
                             f"{array.shape}.")
        if len(array) / rate > self.spec.max_seconds:
            raise DecodeError(f"The audio lasts {len(array) / rate:.1f} s, over the limit of "
                              f"{self.spec.max_seconds:g} s.")
        mono = array.mean(axis=1) if array.ndim == 2 else array
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if rate != self.spec.sample_rate:
            mono = self.soxr.resample(mono, rate, self.spec.sample_rate, quality="HQ")
        if not np.isfinite(mono).all():
            raise DecodeError("The audio holds NaN or infinite samples.")
        return self._windows(mono.astype(np.float32, copy=False))

    def _windows(self, mono: np.ndarray) -> np.ndarray:
        size = self.spec.samples
        step = max(1, round(self.spec.hop * self.spec.sample_rate))
        count = 1 if len(mono) <= size else 1 + math.ceil((len(mono) - size) / step)
        out = np.zeros((count, size), np.float32)
        for k in range(count):
            piece = mono[k * step : k * step + size]
            out[k, : len(piece)] = piece
        return out
