"""Audio: decode (WAV, FLAC, OGG, MP3) with soundfile, mix to mono, resample with soxr, window.

The result is float32 K × samples: K ≥ 1 windows of the model's length. A clip shorter than one
window is padded with silence at the end; a longer one is cut into windows `hop` seconds apart
(the last one padded), whose probabilities the runtime averages. The log-mel features are not
computed here: they are part of the exported graph, so every ONNX consumer gets them.

Untrusted headers are checked before samples are read: the duration (`max_seconds`) and the sample
rate (`MAX_SAMPLE_RATE`) it claims, so that a small or sparse file cannot decode into billions of
samples; samples are mixed to mono block by block, so memory is one channel's however many
channels the file has; and a file holding fewer samples than its header announces is an error,
not a silently shorter clip.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from toolkit_deploy.decoders.reading import open_regular, reading
from toolkit_deploy.errors import DecodeError, MissingDependencyError
from toolkit_deploy.spec import AudioPreprocess

EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
INSTALL = "pip install 'toolkit-deploy[audio]'"
#: Files whose header claims a higher sample rate are refused: no audio format goes beyond it, and
#: a forged rate would turn a short, sparse file into billions of samples (libsndfile takes any).
MAX_SAMPLE_RATE = 768_000
#: Samples (frames × channels) read at a time, each block mixed to mono at once.
_BLOCK = 1 << 20
#: A compressed stream may decode short of the frame count its header gives (codec delay and
#: padding, estimated counts of MP3s without a Xing header): up to this share, or this many
#: frames, is not yet a truncated file.
_FRAME_SLACK, _MIN_FRAME_SLACK = 0.02, 4096


def _riff_shortfall(fp: BinaryIO) -> tuple[int, int] | None:
    """(declared, present) bytes of the samples of a RIFF/WAVE file that holds fewer than its
    header declares, else None. libsndfile reads such a file as a shorter one, without a word."""
    start = fp.tell()
    try:
        head = fp.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            return None
        end = fp.seek(0, os.SEEK_END)
        position = 12
        for _ in range(64):  # the chunks before the samples: fmt, fact, LIST, PEAK, ...
            fp.seek(position)
            header = fp.read(8)
            if len(header) < 8:
                return None
            size = int.from_bytes(header[4:], "little")
            if header[:4] == b"data":
                present = end - position - 8
                # 0 and 0xFFFFFFFF: left by streaming writers that never went back to fill it in.
                return None if size in (0, 0xFFFFFFFF) or size <= present else (size, present)
            position += 8 + size + (size & 1)  # chunks are padded to an even size
        return None
    finally:
        fp.seek(start)


def _libraries() -> tuple[Any, Any]:
    try:
        import soundfile
        import soxr
    except ImportError as e:
        raise MissingDependencyError(f"Audio models need soundfile and soxr: {INSTALL}") from e
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
                fd, size = open_regular(path, "an audio")
                with open(fd, "rb") as fp:
                    if size == 0:  # also every /proc file, whose reading may block
                        raise DecodeError("The file is empty (0 bytes); expected audio.")
                    os.set_blocking(fd, True)  # a regular file with data: reads never wait
                    return self._decode(fp, "the file")
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self._decode(io.BytesIO(bytes(source)), "the given bytes")
        if isinstance(source, np.ndarray):
            return self._from_array(source, self.spec.sample_rate)
        raise TypeError("An audio input must be a path, bytes or a float array at the model's "
                        f"sample rate. Got {type(source).__name__}.")

    def _decode(self, file: BinaryIO, what: str) -> np.ndarray:
        sf = self.soundfile
        shortfall = _riff_shortfall(file)
        if shortfall is not None:
            raise DecodeError(
                f"The WAV file is truncated: its header declares {shortfall[0]} bytes of samples, "
                f"but only {shortfall[1]} are there (an interrupted copy or download?)."
            )
        try:
            with sf.SoundFile(file) as f:
                rate, frames = f.samplerate, f.frames
                self._check_header(rate, frames)
                mono = self._read_mono(f)
        except sf.LibsndfileError as e:
            raise DecodeError(
                f"Cannot decode {what} as audio ({e.error_string}); it is corrupt, truncated, "
                f"or not one of {', '.join(EXTENSIONS)} (the content, not just the name)."
            ) from e
        except (RuntimeError, TypeError, ValueError) as e:  # truncated or odd data
            if isinstance(e, DecodeError):
                raise
            raise DecodeError(f"Corrupt or truncated audio: {e}.") from e
        if len(mono) < frames - max(_MIN_FRAME_SLACK, round(_FRAME_SLACK * frames)):
            raise DecodeError(f"The audio is truncated or corrupt: its header announces {frames} "
                              f"frames, but {len(mono)} could be decoded.")
        if len(mono) == 0:
            raise DecodeError("The audio has no samples.")
        return self._from_array(mono, rate)

    def _check_header(self, rate: int, frames: int) -> None:
        """Refuse what the header claims before a sample is read."""
        if not 0 < rate <= MAX_SAMPLE_RATE:
            raise DecodeError(f"The audio's header claims a sample rate of {rate} Hz; expected 1 "
                              f"to {MAX_SAMPLE_RATE} Hz. The file is corrupt or forged.")
        if frames / rate > self.spec.max_seconds:
            raise DecodeError(
                f"The audio lasts {frames / rate:.1f} s, over the limit of "
                f"{self.spec.max_seconds:g} s; cut it, or raise data.max_seconds in the recipe."
            )

    @staticmethod
    def _read_mono(f: Any) -> np.ndarray:
        """The samples (at most the header's frame count) mixed to mono a block at a time:
        memory is one channel's, not that of every channel the file has. (Not `f.blocks()`: it
        fills a short last read of a truncated stream with uninitialised memory.)"""
        size = max(1, _BLOCK // f.channels)
        blocks = []
        while True:
            block = f.read(size, dtype="float32", always_2d=True)
            if len(block):
                blocks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0])
            if len(block) < size:
                return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)

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
