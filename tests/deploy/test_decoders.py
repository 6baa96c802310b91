import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit_deploy.decoders import create_decoder, modalities
from toolkit_deploy.decoders.image import ImageDecoder
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.spec import ImagePreprocess


def decoder(**kw) -> ImageDecoder:
    return ImageDecoder(ImagePreprocess(**{"height": 16, "width": 24, **kw}))


def png_bytes(array: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


@pytest.mark.parametrize("resize", ["crop", "stretch", "pad"])
@pytest.mark.parametrize("size", [(50, 10), (10, 50), (24, 16), (7, 7)])
def test_every_resize_mode_gives_the_model_shape(resize: str, size: tuple[int, int]) -> None:
    array = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    out = decoder(resize=resize)(array)
    assert out.shape == (16, 24, 3) and out.dtype == np.uint8


def test_same_size_input_is_returned_unchanged() -> None:
    array = np.random.default_rng(1).integers(0, 255, (16, 24, 3), dtype=np.uint8)
    assert np.array_equal(decoder()(array), array)


def test_path_bytes_pil_and_array_decode_identically(tmp_path: Path) -> None:
    array = np.random.default_rng(2).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    data = png_bytes(array)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    d = decoder()
    results = [d(path), d(str(path)), d(data), d(Image.open(io.BytesIO(data))), d(array)]
    for r in results[1:]:
        assert np.array_equal(r, results[0])


def test_pad_keeps_aspect_ratio_with_black_borders() -> None:
    white = np.full((10, 40, 3), 255, np.uint8)  # 4:1, model input 24×16 (3:2)
    out = decoder(resize="pad")(white)
    assert out[0].max() == 0 and out[-1].max() == 0  # top and bottom rows are padding
    assert out[8].min() == 255  # the middle row is image


def test_crop_keeps_the_centre() -> None:
    array = np.zeros((16, 72, 3), np.uint8)
    array[:, 24:48] = 255  # the centre third is white
    out = decoder(resize="crop")(array)
    assert out.min() == 255


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    array = np.zeros((16, 24, 3), np.uint8)
    array[:, :12] = 255  # left half white
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 3  # rotated 180°: the viewer shows the right half white
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    out = decoder()(path)
    assert out[:, 18:].mean() > 200 and out[:, :6].mean() < 50


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_any_colour_mode_becomes_rgb(tmp_path: Path, mode: str) -> None:
    image = Image.new("RGB", (24, 16), (10, 200, 30)).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("I;16", "CMYK") else "x.png")
    image.save(path)
    out = decoder()(path)
    assert out.shape == (16, 24, 3)


def test_grayscale_model_gets_one_channel() -> None:
    out = decoder(channels=1, mean=(0.5,), std=(0.25,))(np.zeros((5, 5, 3), np.uint8))
    assert out.shape == (16, 24, 1)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "cannot identify"),
        (None, "truncated|Corrupt"),
    ],
)
def test_bad_files_raise_decode_error(tmp_path: Path, content: bytes | None, match: str) -> None:
    if content is None:  # a truncated PNG
        content = png_bytes(np.zeros((64, 64, 3), np.uint8) + 7)[:-40]
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=match):
        decoder()(path)


def test_missing_file_and_directory_raise_decode_error(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not found"):
        decoder()(tmp_path / "nope.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DecodeError, match="not a regular file|directory"):
        decoder()(tmp_path / "dir.png")


def test_pixel_cap_refuses_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(DecodeError, match=r"100×100 = 10000 pixels, over the limit of 9999"):
        decoder(max_pixels=9999)(path)


def test_wrong_array_dtype_and_type_are_clear() -> None:
    with pytest.raises(TypeError, match="must be uint8.*float64"):
        decoder()(np.zeros((4, 4, 3)))
    with pytest.raises(TypeError, match="path, bytes, a PIL image or a uint8 array. Got int"):
        decoder()(3)
    with pytest.raises(ValueError, match=r"Got shape \(4, 4, 5\)"):
        decoder()(np.zeros((4, 4, 5), np.uint8))


def test_registry_lists_modalities_and_refuses_unknown() -> None:
    assert modalities() == ["audio", "image", "text", "video"]
    with pytest.raises(ValueError, match="valid modalities: audio, image, text, video"):
        create_decoder("smell", None)
