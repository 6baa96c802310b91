"""Decoders that fail the way no well-formed test file can make their library fail, to test the
scorer's isolation: one video decoder kills its own process on files named `crash*` (a crash
inside FFmpeg), one decoder per modality blocks on files named `hang*` (a decoder stuck in native
code, a read on a hung mount), and an image decoder raises, on files named for it, what
decoder libraries raise on hostile input."""

import os
import signal
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.decoders.audio import AudioDecoder
from toolkit_deploy.decoders.image import ImageDecoder
from toolkit_deploy.decoders.text import TextDecoder
from toolkit_deploy.decoders.video import VideoDecoder

#: How long the hanging decoder blocks: far longer than any test waits, yet finite, so that a
#: scorer that fails to stop it ends with a wrong row instead of never.
HANG_SECONDS = 120


class CrashingVideoDecoder(VideoDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        if Path(source).name.startswith("crash"):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().__call__(source)


class HangingVideoDecoder(VideoDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        if Path(source).name.startswith("hang"):
            time.sleep(HANG_SECONDS)
        return super().__call__(source)


# The other modalities decode in threads: a hang there cannot be killed, only left behind.


def _hangs(source: Any) -> bool:
    return isinstance(source, os.PathLike) and Path(source).name.startswith("hang")


class HangingImageDecoder(ImageDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        if _hangs(source):
            time.sleep(HANG_SECONDS)
        return super().__call__(source)


class HangingAudioDecoder(AudioDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        if _hangs(source):
            time.sleep(HANG_SECONDS)
        return super().__call__(source)


class HangingTextDecoder(TextDecoder):
    def read(self, source: Any) -> str:
        if _hangs(source):
            time.sleep(HANG_SECONDS)
        return super().read(source)


HANGING = {"image": HangingImageDecoder, "text": HangingTextDecoder,
           "audio": HangingAudioDecoder, "video": HangingVideoDecoder}


class Panic(BaseException):
    """Like tokenizers' `pyo3_runtime.PanicException`: derives from BaseException only."""


#: File stem → what `RaisingImageDecoder` raises on it: what libraries raise on hostile input.
RAISED = {"syntax": SyntaxError("not a TIFF file"), "struct": struct.error("unpack requires a "
          "buffer of 4 bytes"), "memory": MemoryError(), "zero": ZeroDivisionError("division by "
          "zero"), "recursion": RecursionError("maximum recursion depth exceeded"),
          "panic": Panic("Onig: Regex search error: retry-limit-in-match over")}


class RaisingImageDecoder(ImageDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        raised = RAISED.get(Path(source).stem)
        if raised is not None:
            raise raised
        return super().__call__(source)
