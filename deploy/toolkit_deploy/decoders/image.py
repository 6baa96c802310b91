"""Images: decode (PNG, JPEG, BMP, GIF, WebP, TIFF), apply EXIF orientation, convert colours and
resize with Pillow.

The result is uint8 H×W×C at the model's size. Scaling to float and normalising are not done here:
they are part of the exported graph, so every ONNX consumer gets them. Only the formats listed
in `FORMATS` are opened, whatever the file's content: Pillow would otherwise pick any of its
forty-odd plugins by the first bytes, EPS among them, which runs Ghostscript where it is
installed.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from toolkit_deploy.decoders.reading import read_regular, reading
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.spec import ImagePreprocess

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: The Pillow formats opened (those of `EXTENSIONS`, by content); any other is refused unopened.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")

#: Files larger than this are refused before Pillow reads them (a 64 MP PNG is far smaller).
MAX_FILE_BYTES = 256 * 1024 * 1024


class ImageDecoder:
    """Turn an image into the uint8 H×W×C array of an `ImagePreprocess` spec.

    Accepts a path, encoded bytes, a `PIL.Image.Image`, or a uint8 array (H×W×C or H×W) of any
    size, which is resized like a decoded file.
    """

    modality = "image"
    extensions = EXTENSIONS

    def __init__(self, spec: ImagePreprocess) -> None:
        self.spec = spec
        self._mode = "RGB" if spec.channels == 3 else "L"

    def __call__(self, source: Any) -> np.ndarray:
        if isinstance(source, (str, os.PathLike)):
            return self._from_file(Path(source))
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self.from_image(self._open(io.BytesIO(bytes(source)), "the given bytes"))
        if isinstance(source, Image.Image):
            return self.from_image(source)
        if isinstance(source, np.ndarray):
            return self._from_array(source)
        raise TypeError(
            "An image input must be a path, bytes, a PIL image or a uint8 array. "
            f"Got {type(source).__name__}."
        )

    def _from_file(self, path: Path) -> np.ndarray:
        with reading(path, "an image"):
            data = read_regular(path, "an image", MAX_FILE_BYTES, lambda size: (
                f"The file has {size} bytes, over the {MAX_FILE_BYTES}-byte limit for images."))
        if not data:
            raise DecodeError("The file is empty (0 bytes); expected an image.")
        return self.from_image(self._open(io.BytesIO(data), "the file"))

    def _open(self, fp: Any, what: str) -> Image.Image:
        try:
            with warnings.catch_warnings():
                # We enforce our own pixel cap below, with a clearer message.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(fp, formats=FORMATS)
            self._check_pixels(image)
            image.load()
        except UnidentifiedImageError as e:
            raise DecodeError(
                f"Pillow cannot identify {what} as an image in one of the formats accepted, "
                f"{', '.join(FORMATS)} ({', '.join(EXTENSIONS)}: the content, not just the "
                "name); convert it to one of them."
            ) from e
        except Image.DecompressionBombError as e:
            # Pillow's own hard limit (twice Image.MAX_IMAGE_PIXELS), met before ours when the
            # header claims even more than that: refused from the header, nothing decoded.
            raise DecodeError(
                f"Image claims more pixels than Pillow will open ({e}); the limit here is "
                f"{self.spec.max_pixels}. Refused as a possible decompression bomb; downscale it."
            ) from e
        except MemoryError as e:
            raise DecodeError(f"Out of memory decoding {what} as an image; free memory, or "
                              "score fewer at once (--workers, --batch-size).") from e
        except (OSError, SyntaxError, ValueError) as e:
            if isinstance(e, DecodeError):
                raise
            # Truncated or corrupt data: Pillow raises OSError ("image file is truncated") or
            # SyntaxError for some broken headers.
            raise DecodeError(f"Corrupt or truncated image: {e}.") from e
        return image

    def _check_pixels(self, image: Image.Image) -> None:
        w, h = image.size
        if w == 0 or h == 0:  # it has nothing to resize (the scale would divide by zero)
            raise DecodeError(f"The image is {w}×{h} pixels: empty; expected at least 1×1.")
        if w * h > self.spec.max_pixels:
            raise DecodeError(
                f"Image claims {w}×{h} = {w * h} pixels, over the limit of {self.spec.max_pixels}; "
                "refused as a possible decompression bomb. Downscale it, or raise "
                "max_pixels in the recipe's data section."
            )

    def _from_array(self, array: np.ndarray) -> np.ndarray:
        if array.dtype != np.uint8:
            raise TypeError(
                f"An image array must be uint8 (H×W×C or H×W). Got dtype {array.dtype}; "
                "convert with (x * 255).round().astype(np.uint8) if it is float in [0, 1]."
            )
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(
                f"An image array must be H×W, H×W×1, H×W×3 or H×W×4. Got shape {array.shape}."
            )
        return self.from_image(Image.fromarray(array))

    def from_image(self, image: Image.Image) -> np.ndarray:
        """A decoded image (or a video frame) → the spec's uint8 H×W×C array."""
        self._check_pixels(image)
        image = self._upright(image)
        try:
            if image.mode != self._mode:
                if image.mode == "P" and "transparency" in image.info:
                    image = image.convert("RGBA")
                image = image.convert(self._mode)
            image = self._resize(image)
            array = np.array(image, dtype=np.uint8)  # a writable copy (torch warns on read-only)
        except MemoryError as e:
            raise DecodeError(f"Out of memory converting and resizing a {image.width}×"
                              f"{image.height} image; free memory, or score fewer at once "
                              "(--workers, --batch-size).") from e
        if array.ndim == 2:
            array = array[:, :, None]
        return array

    @staticmethod
    def _upright(image: Image.Image) -> Image.Image:
        """The image turned as its EXIF orientation says. The EXIF block is parsed here, outside
        `Image.open`: a malformed one raises what Pillow's TIFF parser raises (SyntaxError,
        struct.error, ValueError, found by fuzzing), which is this image's `DecodeError`."""
        try:
            return ImageOps.exif_transpose(image)
        except Exception as e:  # any malformed EXIF; nothing here is a bug of ours to hide
            raise DecodeError(f"The image's EXIF metadata is malformed ({type(e).__name__}: "
                              f"{e}); strip it (e.g. exiftool -all= FILE) or save the image "
                              "again.") from e

    def _resize(self, image: Image.Image) -> Image.Image:
        spec = self.spec
        w, h = image.size
        target = (spec.width, spec.height)
        if (w, h) == target:
            return image
        resample = Image.Resampling.BILINEAR
        if spec.resize == "stretch":
            return image.resize(target, resample)
        if spec.resize == "crop":
            # Scale the shorter side to the target, centre-crop the longer.
            scale = max(spec.width / w, spec.height / h)
            size = (max(spec.width, round(w * scale)), max(spec.height, round(h * scale)))
            left = (size[0] - spec.width) // 2
            top = (size[1] - spec.height) // 2
            if size[0] * size[1] <= spec.max_pixels:
                image = image.resize(size, resample)
                return image.crop((left, top, left + spec.width, top + spec.height))
            # A strip (2,000,000×1, 6 KB as a PNG) would resize to 128,000,000×64 pixels first:
            # past the pixel cap, only the crop is computed, from its box in source coordinates.
            # The filter's sampling positions and support are those of the full resize, so
            # pixels differ by at most 1 (rounding) from resizing first.
            sx, sy = w / size[0], h / size[1]
            box = (left * sx, top * sy, (left + spec.width) * sx, (top + spec.height) * sy)
            return image.resize(target, resample, box=box)
        # pad: fit the longer side, centre on black.
        scale = min(spec.width / w, spec.height / h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        canvas = Image.new(self._mode, target)
        offset = ((spec.width - size[0]) // 2, (spec.height - size[1]) // 2)
        canvas.paste(image.resize(size, resample), offset)
        return canvas
