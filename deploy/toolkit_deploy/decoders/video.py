"""Video: decode (MP4, WebM, AVI, MKV, MOV, animated GIF) with PyAV, pick T frames, resize each.

Frames are spread evenly over the clip (`uniform`) or taken at a fixed rate from its start (`fps`;
a shorter clip repeats its last frame), then brought to size by the image decoder's own code. The
result is uint8 T×H×W×C; scaling and normalisation are part of the exported graph. FFmpeg parses
untrusted bytes, so the runtime decodes videos in worker processes (`isolate`): a decoder that
crashes costs one error row, not the run.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy.decoders.image import ImageDecoder
from toolkit_deploy.decoders.reading import reading, regular_file_size
from toolkit_deploy.errors import DecodeError, MissingDependencyError
from toolkit_deploy.spec import VideoPreprocess

EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif")
INSTALL = "pip install 'toolkit-deploy[video]'"
#: Header frame counts may be off by this share (at least one frame) before a file counts as
#: truncated; the missing frames repeat the last decoded one.
_COUNT_SLACK = 0.02


def _centres(count: int, frames: int) -> np.ndarray:
    """Indices of the frames at the middle of `frames` equal parts of `count` frames: the same
    frames that picking by time (at the middle of equal parts of the duration) gives."""
    return np.floor((np.arange(frames) + 0.5) * count / frames).astype(int)


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise MissingDependencyError(f"Video models need PyAV: {INSTALL}") from e
    return av


class VideoDecoder:
    """Turn a video into the uint8 T×H×W×C frames of a `VideoPreprocess` spec.

    Accepts a path or encoded bytes.
    """

    modality = "video"
    extensions = EXTENSIONS
    #: Decode in worker processes: a crash inside FFmpeg must not take the run down.
    isolate = True

    def __init__(self, spec: VideoPreprocess) -> None:
        self.spec = spec
        self.av = _av()
        self.frame_decoder = ImageDecoder(spec.frame_spec())

    def __call__(self, source: Any) -> np.ndarray:
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            with reading(path, "a video"):
                if regular_file_size(path, "a video") == 0:
                    raise DecodeError("The file is empty (0 bytes); expected a video.")
                return self._decode(str(path), "the file")
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self._decode(io.BytesIO(bytes(source)), "the given bytes")
        raise TypeError(f"A video input must be a path or bytes. Got {type(source).__name__}.")

    def _decode(self, file: Any, what: str) -> np.ndarray:
        av = self.av
        try:
            with av.open(file, mode="r", metadata_errors="ignore") as container:
                stream = next(iter(container.streams.video), None)
                if stream is None:
                    kinds = sorted({s.type for s in container.streams}) or ["none"]
                    raise DecodeError(f"{what.capitalize()} has no video stream (streams: "
                                      f"{', '.join(kinds)}); expected a video.")
                self._check_header(stream, container)
                stream.thread_type = "AUTO"
                frames = self._pick(container.decode(stream), stream, container)
                return np.stack([f if isinstance(f, np.ndarray) else self.frame_decoder.from_image(
                    f.to_image()) for f in frames])
        except av.FFmpegError as e:
            if isinstance(e, (PermissionError, FileNotFoundError)) and e.filename == file:
                raise  # the file, not its content: `reading` says so (and what to do)
            # Other EPERM/ENOENT codes come from decoding the content (avcodec_send_packet
            # returns AVERROR(EPERM) on some corrupt packets, found by fuzzing): the content.
            raise DecodeError(f"Cannot decode {what} as video (FFmpeg: {e}); it is corrupt, "
                              f"truncated, or not one of {', '.join(EXTENSIONS)}.") from e

    def _check_header(self, stream: Any, container: Any) -> None:
        spec = self.spec
        if stream.codec_context is None:  # FFmpeg has no decoder for its codec (found by fuzzing)
            tag = getattr(stream, "codec_tag", "") or "unknown"
            raise DecodeError(f"The video stream's codec ({tag!r}) is not one FFmpeg can decode; "
                              "re-encode the video (e.g. H.264 in MP4).")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > spec.max_pixels:
            raise DecodeError(f"The video's frames are {width}×{height} = {width * height} "
                              f"pixels, over the limit of {spec.max_pixels}; downscale it, or "
                              "raise data.max_pixels in the recipe.")
        seconds = self._duration(stream, container)
        if seconds is not None and seconds > spec.max_seconds:
            raise DecodeError(f"The video lasts {seconds:.1f} s, over the limit of "
                              f"{spec.max_seconds:g} s; cut it, or raise data.max_seconds.")
        if stream.frames > spec.max_frames:
            raise DecodeError(f"The video has {stream.frames} frames, over the limit of "
                              f"{spec.max_frames}.")

    @staticmethod
    def _duration(stream: Any, container: Any) -> float | None:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / 1_000_000  # AV_TIME_BASE
        return None

    def _pick(self, decoded: Iterator[Any], stream: Any, container: Any) -> list[Any]:
        """The T frames of the spec, decoding no further than needed."""
        spec = self.spec
        known = stream.frames
        if spec.sampling == "uniform" and known > 0:
            wanted = _centres(known, spec.frames)
            picked: dict[int, Any] = {}
            count = 0
            for index, frame in enumerate(self._capped(decoded)):
                count = index + 1
                if index in wanted:
                    picked[index] = frame
                if index >= wanted[-1]:
                    break  # every wanted frame is here; the rest need not be decoded
            else:  # the stream ended before the last wanted frame
                if not picked or count < known - max(1, round(_COUNT_SLACK * known)):
                    raise DecodeError(f"The video is truncated or corrupt: its header announces "
                                      f"{known} frames, but {count} could be decoded.")
            last = picked[max(picked)]
            return [picked.get(i, last) for i in wanted]
        # Unknown frame count, or fixed-rate sampling: pick by presentation time, streaming.
        seconds = self._duration(stream, container)
        if spec.sampling == "fps":
            offsets = np.arange(spec.frames) / spec.fps
        elif seconds is not None:
            offsets = (np.arange(spec.frames) + 0.5) * seconds / spec.frames
        else:
            return self._pick_evenly(decoded)
        picked: list[Any] = []
        previous = None
        for frame in self._capped(decoded):
            time = frame.time if frame.time is not None else 0.0
            if previous is None:
                start = time
            # The frame on screen at a target time is the last one that started at or before it.
            while len(picked) < spec.frames and start + offsets[len(picked)] < time:
                picked.append(previous if previous is not None else frame)
            if len(picked) == spec.frames:
                break
            previous = frame
        if previous is None and not picked:
            raise DecodeError("The video holds no decodable frame.")
        return picked + [previous] * (spec.frames - len(picked))

    def _pick_evenly(self, decoded: Iterator[Any]) -> list[np.ndarray]:
        """Neither the frame count nor the duration is known: bring every frame to size as it
        is decoded (memory stays bounded by max_frames small frames), then pick evenly."""
        frames = [self.frame_decoder.from_image(f.to_image()) for f in self._capped(decoded)]
        if not frames:
            raise DecodeError("The video holds no decodable frame.")
        wanted = _centres(len(frames), self.spec.frames)
        return [frames[i] for i in wanted]

    def _capped(self, decoded: Iterator[Any]) -> Iterator[Any]:
        for count, frame in enumerate(decoded, start=1):
            if count > self.spec.max_frames:
                raise DecodeError(f"The video has more than {self.spec.max_frames} frames, the "
                                  "limit; cut it, or raise data.max_frames in the recipe.")
            yield frame

