import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.deploy.builders import COLOURS, LABELS, SIZE, colour_model_proto, write_image
from toolkit_deploy import names
from toolkit_deploy.errors import DeviceError, ModelFormatError
from toolkit_deploy.predictor import Predictor


def test_predicts_every_kind_of_input(colour_model: Path, tmp_path: Path) -> None:
    p = Predictor(colour_model)
    assert p.labels == LABELS and p.modality == "image"
    red = write_image(tmp_path / "red.png", COLOURS["red"])
    green = np.full((5, 9, 3), COLOURS["green"], np.uint8)
    blue = Image.new("RGB", (30, 30), COLOURS["blue"])
    jpeg = io.BytesIO()
    Image.new("RGB", (10, 10), COLOURS["green"]).save(jpeg, format="JPEG")
    assert p.predict([red, str(red), green, blue, jpeg.getvalue()]) == [
        "red", "red", "green", "blue", "green"
    ]
    assert p.predict(red) == ["red"]  # a single input gives a list of one


def test_probabilities_match_the_graph_arithmetic(colour_model: Path) -> None:
    p = Predictor(colour_model)
    batch = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    batch[0, ..., 0] = 255
    probs = p.predict_proba(batch)
    logits = np.array([[10.0, 0, 0], [0, 0, 0]])
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)
    assert probs.dtype == np.float32


def test_batches_of_any_size_agree(colour_model: Path) -> None:
    p = Predictor(colour_model)
    batch = np.random.default_rng(0).integers(0, 255, (37, SIZE, SIZE, 3), dtype=np.uint8)
    whole = p.run(batch)[1]
    for bs in (1, 5, 16):
        parts = np.concatenate([p.run(batch[i : i + bs])[1] for i in range(0, 37, bs)])
        np.testing.assert_allclose(parts, whole, rtol=1e-6, atol=1e-7)


def test_wrong_batch_is_a_clear_error(colour_model: Path) -> None:
    p = Predictor(colour_model)
    with pytest.raises(ValueError, match=r"Batch is uint8 \(2, 8, 8, 1\), but colour.onnx "
                                         r"expects uint8 \(N, 8, 8, 3\)"):
        p.run(np.zeros((2, SIZE, SIZE, 1), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        p.run(np.zeros((2, SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match=r"Batch has shape \(8, 3\)"):
        p.run(np.zeros((SIZE, 3), np.uint8))


def test_runs_on_the_cpu_provider_only(colour_model: Path) -> None:
    p = Predictor(colour_model)
    assert p.providers == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in repr(p)


def test_cuda_without_cuda_is_an_error_not_a_cpu_run(colour_model: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert Predictor(colour_model, device="cuda").providers[0] == "CUDAExecutionProvider"
    else:
        with pytest.raises(DeviceError, match="onnxruntime-gpu"):
            Predictor(colour_model, device="cuda")


def test_missing_file_and_non_toolkit_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="toolkit export"):
        Predictor(tmp_path / "missing.onnx")
    bare = colour_model_proto(metadata={})
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(ModelFormatError, match="not a toolkit model"):
        Predictor(tmp_path / "bare.onnx")


def test_metadata_that_disagrees_with_the_graph_is_refused(tmp_path: Path) -> None:
    model = colour_model_proto()
    meta = {p.key: p.value for p in model.metadata_props}
    meta[names.META_PREPROCESS] = meta[names.META_PREPROCESS].replace('"height": 8', '"height": 9')
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, tmp_path / "altered.onnx")
    with pytest.raises(ModelFormatError, match="altered after export"):
        Predictor(tmp_path / "altered.onnx")


def test_label_count_must_match_outputs(tmp_path: Path) -> None:
    onnx.save(colour_model_proto(labels=("a", "b")), tmp_path / "two.onnx")
    with pytest.raises(ModelFormatError, match="outputs 3 classes but its metadata lists 2"):
        Predictor(tmp_path / "two.onnx")


# --- the lows of issue 17: each a clear error, never a traceback or a silent wrong answer --------

@pytest.mark.parametrize("batch_size", [-1, 0, 1.5, True])
def test_a_batch_size_below_one_is_refused(colour_model: Path, tmp_path: Path,
                                           batch_size: object) -> None:
    red = write_image(tmp_path / "red.png", COLOURS["red"])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        Predictor(colour_model).predict([red], batch_size=batch_size)


def test_an_empty_image_is_a_decode_error(colour_model: Path) -> None:
    from toolkit_deploy.errors import DecodeError

    p = Predictor(colour_model)
    for empty in (np.zeros((0, 0, 3), np.uint8), np.zeros((0, 7), np.uint8),
                  Image.new("RGB", (0, 0))):
        with pytest.raises(DecodeError, match="pixels: empty"):
            p.predict([empty])


def test_a_memoryview_is_one_encoded_input(colour_model: Path, tmp_path: Path) -> None:
    data = write_image(tmp_path / "red.png", COLOURS["red"]).read_bytes()
    assert Predictor(colour_model).predict(memoryview(data)) == ["red"]


def test_token_ids_outside_the_vocabulary_are_refused(keyword_model: Path) -> None:
    p = Predictor(keyword_model)
    length, vocab = p.spec.preprocess.max_length, p.spec.preprocess.vocab_size
    for bad in (vocab, 10**6, -1):  # -1 would silently be the last row of the embedding
        ids = np.full((2, length), p.spec.preprocess.pad_id, np.int64)
        ids[1, 0] = bad
        with pytest.raises(ValueError, match=rf"Token ids must be in \[0, {vocab}\).*row 1"):
            p.predict(ids)
    assert len(p.predict(np.full((2, length), p.spec.preprocess.pad_id, np.int64))) == 2


def test_a_stereo_array_is_one_clip_not_a_batch(loudness_model: Path) -> None:
    p = Predictor(loudness_model)
    rate = p.spec.preprocess.sample_rate
    t = np.arange(rate, dtype=np.float32) / rate
    loud = 0.9 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([loud, loud], axis=1)  # (samples, 2): one clip of one second
    assert stereo.shape == (rate, 2)
    assert p.predict(stereo) == p.predict(loud) == ["loud"]
    assert p.predict_proba(stereo).shape == (1, 2)


def test_a_model_input_over_max_pixels_is_refused_before_any_allocation(tmp_path: Path) -> None:
    meta = {p.key: p.value for p in colour_model_proto().metadata_props}
    side = 100_000
    preprocess = {**json.loads(meta[names.META_PREPROCESS]), "height": side, "width": side}
    meta[names.META_PREPROCESS] = json.dumps(preprocess)
    meta[names.META_INPUT] = json.dumps({"name": "input", "dtype": "uint8",
                                         "shape": ["batch", side, side, 3]})
    onnx.save(colour_model_proto(size=side, metadata=meta), tmp_path / "huge.onnx")
    with pytest.raises(ModelFormatError, match=r"100000 × 100000 = 10000000000 pixels\) must be "
                                                r"at most max_pixels"):
        Predictor(tmp_path / "huge.onnx")
    meta[names.META_PREPROCESS] = json.dumps({**preprocess, "height": SIZE, "width": SIZE,
                                              "max_pixels": 10**15})
    meta[names.META_INPUT] = json.dumps({"name": "input", "dtype": "uint8",
                                         "shape": ["batch", SIZE, SIZE, 3]})
    onnx.save(colour_model_proto(metadata=meta), tmp_path / "uncapped.onnx")
    with pytest.raises(ModelFormatError, match="max_pixels must be at most 268435456"):
        Predictor(tmp_path / "uncapped.onnx")


def test_a_decoder_option_of_another_modality_is_refused(colour_model: Path,
                                                         keyword_model: Path) -> None:
    with pytest.raises(ValueError, match="--encoding does not apply to image models"):
        Predictor(colour_model, encoding="latin-1")
    for codec in ("rot13", "base64", "zlib"):
        with pytest.raises(ValueError, match="is a codec but not a text encoding"):
            Predictor(keyword_model, encoding=codec)
    with pytest.raises(ValueError, match="Unknown text encoding 'no-such-codec'"):
        Predictor(keyword_model, encoding="no-such-codec")
