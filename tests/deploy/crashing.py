"""A video decoder that kills its own process on files named `crash*`: it stands in for a crash
inside FFmpeg (which no well-formed test file can provoke) to test the scorer's isolation."""

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.decoders.video import VideoDecoder


class CrashingVideoDecoder(VideoDecoder):
    def __call__(self, source: Any) -> np.ndarray:
        if Path(source).name.startswith("crash"):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().__call__(source)
