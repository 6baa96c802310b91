"""Video decoders that fail the way no well-formed test file can make FFmpeg fail, to test the
scorer's isolation: one kills its own process on files named `crash*` (a crash inside FFmpeg),
the other blocks on files named `hang*` (a decoder stuck in native code)."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

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
