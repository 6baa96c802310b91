"""Property-based fuzzing of everything in the runtime that parses untrusted bytes: the image,
text, audio and video decoders, tables of texts, model metadata and the ONNX protobuf walker.

Inputs are random bytes and real files written here (PNG, JPEG, GIF, WAV, FLAC, MP4, WebM, text,
CSV, JSONL, ONNX) with random edits. The property: the input decodes to exactly the array the
model takes, or fails with the documented error (`DecodeError` for inputs, `DatasetError` for a
table, `ModelFormatError` for a model file). Any other exception is a bug.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from PIL import Image

from tests.deploy.builders import (
    colour_clip,
    colour_model_proto,
    keyword_model_proto,
    keyword_tokenizer_json,
    write_sine,
    write_video,
)
from tests.deploy.fuzzing import fuzz, mutated
from toolkit_deploy import names
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DatasetError, DecodeError, ModelFormatError
from toolkit_deploy.onnxproto import external_data_locations
from toolkit_deploy.session import check_external_data
from toolkit_deploy.spec import (
    AudioPreprocess,
    ImagePreprocess,
    ModelSpec,
    TextPreprocess,
    VideoPreprocess,
)
from toolkit_deploy.tables import read_table

#: Small caps keep every example fast; the code paths are those of the default caps.
IMAGE = ImagePreprocess(height=16, width=12, resize="crop", max_pixels=4_000_000)
AUDIO = AudioPreprocess(sample_rate=8000, window=0.25, hop=0.125, n_fft=256, hop_length=80,
                        n_mels=16, f_max=4000.0, max_seconds=5.0)
VIDEO = VideoPreprocess(frames=4, height=16, width=16, resize="stretch", max_pixels=1_000_000,
                        max_frames=600, max_seconds=60.0)
_FILES = Path(tempfile.mkdtemp(prefix="toolkit-fuzz-"))
#: Pillow warns about the corrupt TIFF/EXIF tags it skips; corrupt files are the point here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")


@cache
def text_spec() -> TextPreprocess:
    from tokenizers import Tokenizer

    document = keyword_tokenizer_json()
    return TextPreprocess(tokenizer=document, max_length=12, pad_id=0,
                          vocab_size=Tokenizer.from_str(document).get_vocab_size(),
                          max_bytes=4096)


@cache
def decoder(modality: str, encoding: str | None = None) -> Any:
    spec = {"image": IMAGE, "audio": AUDIO, "video": VIDEO}.get(modality) or text_spec()
    return create_decoder(modality, spec, **({"encoding": encoding} if encoding else {}))


@cache
def sample(kind: str) -> bytes:
    """A small valid file of `kind`, written by the real library."""
    rng = np.random.default_rng(0)
    if kind in ("png", "jpeg", "gif", "webp", "bmp", "tiff"):
        pixels = rng.integers(0, 255, (10, 14, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        image = Image.fromarray(pixels)
        (image.convert("P") if kind == "gif" else image).save(buffer, format=kind)
        return buffer.getvalue()
    if kind in ("wav", "flac"):
        path = write_sine(_FILES / f"sample.{kind}", seconds=0.1, rate=8000, channels=2,
                          fmt=kind.upper(), subtype="PCM_16")
        return path.read_bytes()
    if kind in ("mp4", "webm"):
        frames = colour_clip((200, 30, 30), n=5, size=(16, 16))
        return write_video(_FILES / f"sample.{kind}", frames, fps=5).read_bytes()
    if kind == "txt":
        return "Goal! 比赛 was great, café and 美食\n".encode()
    if kind == "csv":
        return 'id,text,label\n1,goal match,sport\n2,"pizza, café",food\n3,,food\n'.encode()
    if kind == "jsonl":
        return ('{"id": 1, "text": "goal", "label": "sport"}\n'
                '{"id": 2, "text": "美食", "label": "food"}\n').encode()
    raise ValueError(kind)


@pytest.fixture(scope="module", autouse=True)
def _remove_files() -> Any:
    yield
    shutil.rmtree(_FILES, ignore_errors=True)


def decode_or_refuse(decode: Callable[[Any], np.ndarray], source: Any) -> np.ndarray | None:
    """The decoded array, or None when the decoder refused the input with a DecodeError."""
    try:
        return decode(source)
    except DecodeError as e:
        assert str(e), "a DecodeError must say what went wrong"
        return None


def as_file(data: bytes, suffix: str) -> Path:
    path = _FILES / f"input{suffix}"
    path.write_bytes(data)
    return path


# --- images --------------------------------------------------------------------------------------


def check_image(array: np.ndarray | None) -> None:
    if array is not None:
        assert array.shape == IMAGE.input_shape and array.dtype == np.uint8


@fuzz(400)
@given(st.binary(max_size=2048))
def test_image_decoder_on_random_bytes(data: bytes) -> None:
    check_image(decode_or_refuse(decoder("image"), data))


@fuzz(600)
@given(st.sampled_from(["png", "jpeg", "gif", "webp", "bmp", "tiff"]).flatmap(
    lambda kind: mutated(sample(kind))))
def test_image_decoder_on_mutated_files(data: bytes) -> None:
    check_image(decode_or_refuse(decoder("image"), data))
    check_image(decode_or_refuse(decoder("image"), as_file(data, ".png")))


# --- text ----------------------------------------------------------------------------------------


def check_ids(array: np.ndarray | None) -> None:
    if array is not None:
        spec = text_spec()
        assert array.shape == (spec.max_length,) and array.dtype == np.int64
        assert ((array >= 0) & (array < spec.vocab_size)).all()


@fuzz(300)
@given(st.text(alphabet=st.characters(), max_size=300))  # lone surrogates included
@example("\ud800 goal")
@example("x" * 5000)
def test_text_decoder_on_random_strings(text: str) -> None:
    check_ids(decode_or_refuse(decoder("text"), text))


@fuzz(300)
@given(st.binary(max_size=600) | mutated(sample("txt")),
       st.sampled_from([None, "gb18030", "latin-1", "utf-16"]))
def test_text_decoder_on_random_and_mutated_bytes(data: bytes, encoding: str | None) -> None:
    text = decoder("text", encoding)
    check_ids(decode_or_refuse(text, data))
    check_ids(decode_or_refuse(text, as_file(data, ".txt")))
    for result in text.decode_many([data, as_file(data, ".txt"), "goal"]):
        assert isinstance(result, (np.ndarray, DecodeError)), repr(result)


@fuzz(400)
@given(st.sampled_from(["txt", "csv", "jsonl"]).flatmap(
    lambda kind: st.tuples(st.just(kind), mutated(sample(kind)))))
@example(("jsonl", b'{"text": ' + b"[" * 100_000 + b"\n"))
@example(("csv", b"text\n" + b"x" * 200_000 + b"\n"))
@example(("csv", b"te\x00xt\n\x00\n"))
@example(("jsonl", b'{"text": "\\ud800 goal", "label": "sport"}\n'))
def test_tables_of_texts_on_mutated_files(case: tuple[str, bytes]) -> None:
    kind, data = case
    path = as_file(data, f".{kind}")
    label = "label" if kind != "txt" else None
    try:
        rows = read_table(path, label_column=label)
    except DatasetError as e:
        assert str(path) in str(e) or "not valid" in str(e), str(e)
        return
    for row in rows:
        assert (row.text is None) == bool(row.error)
        if row.text is not None:
            check_ids(decode_or_refuse(decoder("text"), row.text))


def test_a_lone_surrogate_in_a_table_is_an_error_row_not_a_dead_run(tmp_path: Path) -> None:
    """Found by fuzzing: a JSON escape of half a surrogate pair gives a str that tokenizers
    refuses with a TypeError for the whole batch, which stopped `score` (and a JSON line nested
    thousands deep raised RecursionError)."""
    import onnx

    from toolkit_deploy.score import score

    model = tmp_path / "keywords.onnx"
    onnx.save(keyword_model_proto(), model)
    table = tmp_path / "texts.jsonl"
    table.write_text('{"text": "goal"}\n{"text": "\\ud800 pizza"}\n'
                     + '{"text": ' + "[" * 50_000 + "\n" + '{"text": "美食"}\n', encoding="utf-8")
    summary = score(model, table, tmp_path / "p.csv", progress=False)
    assert (summary.n_scored, summary.n_failed) == (2, 2)
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["sport", "", "", "food"]
    assert "lone surrogate" in rows[1]["error"] and "nested too deeply" in rows[2]["error"]


# --- audio ---------------------------------------------------------------------------------------


def check_windows(array: np.ndarray | None) -> None:
    if array is not None:
        assert array.ndim == 2 and array.shape[1] == AUDIO.samples and len(array) >= 1
        assert array.dtype == np.float32 and np.isfinite(array).all()


@fuzz(300)
@given(st.binary(max_size=2048))
def test_audio_decoder_on_random_bytes(data: bytes) -> None:
    check_windows(decode_or_refuse(decoder("audio"), data))


@fuzz(600)
@given(st.sampled_from(["wav", "flac"]).flatmap(lambda kind: mutated(sample(kind))))
def test_audio_decoder_on_mutated_files(data: bytes) -> None:
    check_windows(decode_or_refuse(decoder("audio"), data))
    check_windows(decode_or_refuse(decoder("audio"), as_file(data, ".wav")))


# --- video ---------------------------------------------------------------------------------------


def check_clip(array: np.ndarray | None) -> None:
    if array is not None:
        assert array.shape == VIDEO.input_shape and array.dtype == np.uint8


@fuzz(200)
@given(st.binary(max_size=2048))
def test_video_decoder_on_random_bytes(data: bytes) -> None:
    check_clip(decode_or_refuse(decoder("video"), data))


@fuzz(400)
@given(st.sampled_from(["mp4", "webm", "gif"]).flatmap(lambda kind: mutated(sample(kind))))
@example(b"\x00\x00\x00\x00\x00\x80B\x86\x81")  # FFmpeg's EPERM from avcodec_send_packet
def test_video_decoder_on_mutated_files(data: bytes) -> None:
    check_clip(decode_or_refuse(decoder("video"), data))


def test_a_video_stream_of_an_unknown_codec_is_a_decode_error() -> None:
    """Found by fuzzing: PyAV gives such a stream no codec context, and reading its size raised
    AttributeError, which killed a whole `score` run."""
    data = sample("mp4")
    where = data.rfind(b"avc1")  # the sample description's codec, not the brand in ftyp
    with pytest.raises(DecodeError, match="codec .* is not one FFmpeg can decode"):
        decoder("video")(data[:where] + b"zzzz" + data[where + 4 :])


# --- model files ---------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


@cache
def valid_metadata() -> dict[str, dict[str, str]]:
    """Metadata of a real image and a real text model."""
    return {kind: {p.key: p.value for p in proto.metadata_props}
            for kind, proto in (("image", colour_model_proto()),
                                ("text", keyword_model_proto()))}


@st.composite
def altered_metadata(draw: st.DrawFn) -> dict[str, Any]:
    """Valid metadata with keys dropped, values replaced by random strings, or one entry of a
    JSON value replaced by a random JSON value."""
    meta = dict(valid_metadata()[draw(st.sampled_from(["image", "text"]))])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(meta) or [names.META_LABELS]))
        action = draw(st.sampled_from(["drop", "string", "json", "entry", "bytes"]))
        if action == "drop":
            meta.pop(key, None)
        elif action == "string":
            meta[key] = draw(st.text(max_size=40))
        elif action == "bytes":
            meta[key] = draw(mutated(meta.get(key, "").encode(), 3)).decode("utf-8", "replace")
        elif action == "json":
            meta[key] = json.dumps(draw(JSON_VALUES))
        else:
            try:
                value = json.loads(meta.get(key, ""))
            except ValueError:
                continue
            if isinstance(value, dict) and value:
                value[draw(st.sampled_from(sorted(value)))] = draw(JSON_VALUES)
            elif isinstance(value, list) and value:
                value[draw(st.integers(0, len(value) - 1))] = draw(JSON_VALUES)
            meta[key] = json.dumps(value)
    return meta


@fuzz(600)
@given(altered_metadata())
@example({**valid_metadata()["image"], names.META_PREPROCESS: "[" * 100_000})
@example({**valid_metadata()["image"], names.META_OPSET: "9" * 5000})
@example({**valid_metadata()["image"], names.META_OPSET: "\x1c8"})  # str.strip() drops \x1c
def test_metadata_parser_on_altered_metadata(meta: dict[str, Any]) -> None:
    try:
        spec = ModelSpec.from_metadata(meta, source="fuzzed.onnx")
    except ModelFormatError as e:
        assert "fuzzed.onnx" in str(e), str(e)
        return
    assert spec.labels and spec.modality in ("image", "text")
    ModelSpec.from_metadata(spec.to_metadata())  # what it reads, it writes back readably


@fuzz(400)
@given(st.binary(max_size=1024) | mutated(colour_model_proto().SerializeToString()))
@example(b"\x3a" + b"\xff" * 9 + b"\x01")  # a length varint that never ends
def test_onnx_protobuf_walker_on_random_and_mutated_models(data: bytes) -> None:
    try:
        locations = external_data_locations(data)
    except ModelFormatError:
        locations = None
    assert locations is None or all(isinstance(x, str) for x in locations)
    path = as_file(data, ".onnx")
    try:
        check_external_data(path)
    except ModelFormatError as e:
        assert str(path) in str(e)


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif", "webp", "bmp", "tiff", "wav", "flac",
                                  "mp4", "webm", "txt", "csv", "jsonl"])
def test_the_samples_decode(kind: str) -> None:
    """The fuzzed files start valid, so edits explore past the format's first checks."""
    data = sample(kind)
    if kind in ("png", "jpeg", "gif", "webp", "bmp", "tiff"):
        check_image(decoder("image")(data))
    elif kind in ("wav", "flac"):
        check_windows(decoder("audio")(data))
    elif kind in ("mp4", "webm"):
        check_clip(decoder("video")(data))
    elif kind == "txt":
        check_ids(decoder("text")(data))
    else:
        assert all(row.text for row in read_table(as_file(data, f".{kind}"),
                                                  label_column="label")[:2])
