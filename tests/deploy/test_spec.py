import json
from pathlib import Path

import onnx
import pytest

from tests.deploy.builders import colour_model_proto
from toolkit_deploy import names
from toolkit_deploy.errors import ModelFormatError
from toolkit_deploy.spec import ImagePreprocess, ModelSpec, ParityReport


def spec() -> ModelSpec:
    return ModelSpec(
        modality="image", labels=("猫", "dog"), preprocess=ImagePreprocess(32, 48),
        opset=18, provenance={"recipe": {"name": "image-cnn"}},
        parity=ParityReport(True, 64, (1, 16), 1e-6, 1e-5, 1e-7, 1.0, 1e-4, 1e-3, 1.0),
    )


def test_metadata_round_trip() -> None:
    meta = spec().to_metadata()
    assert all(isinstance(v, str) for v in meta.values())
    assert ModelSpec.from_metadata(meta) == spec()
    assert json.loads(meta[names.META_INPUT]) == {
        "name": "input", "dtype": "uint8", "shape": ["batch", 32, 48, 3]
    }


@pytest.mark.parametrize("key", names.REQUIRED_META)
def test_missing_key_is_named(key: str) -> None:
    meta = spec().to_metadata()
    del meta[key]
    with pytest.raises(ModelFormatError, match=key.replace(".", r"\.")):
        ModelSpec.from_metadata(meta)


def test_newer_format_is_refused_with_upgrade_hint() -> None:
    meta = spec().to_metadata()
    meta[names.META_FORMAT_VERSION] = str(names.FORMAT_VERSION + 1)
    with pytest.raises(ModelFormatError, match="Upgrade toolkit-deploy"):
        ModelSpec.from_metadata(meta)


@pytest.mark.parametrize("labels", ["[]", "[1, 2]", "not json", '"cat"'])
def test_bad_labels_are_refused(labels: str) -> None:
    meta = spec().to_metadata()
    meta[names.META_LABELS] = labels
    with pytest.raises(ModelFormatError):
        ModelSpec.from_metadata(meta)


def test_preprocess_validation_messages() -> None:
    with pytest.raises(ValueError, match="resize must be one of"):
        ImagePreprocess(8, 8, resize="zoom")
    with pytest.raises(ValueError, match="one value per channel"):
        ImagePreprocess(8, 8, mean=(0.5,))
    meta = spec().to_metadata()
    meta[names.META_PREPROCESS] = json.dumps({"height": 8, "width": 8, "gamma": 2})
    with pytest.raises(ModelFormatError, match="unknown keys \\['gamma'\\]"):
        ModelSpec.from_metadata(meta)


# --- format 2: every value JSON; format 1 still read ---------------------------------------------

def format_1(meta: dict[str, str]) -> dict[str, str]:
    """`meta` (format 2) as the runtime of format 1 wrote it: the modality bare, a text model's
    tokenizer a string of JSON inside the preprocess JSON, no resize_algorithm, version 1."""
    old = dict(meta)
    old[names.META_FORMAT_VERSION] = "1"
    modality = json.loads(meta[names.META_MODALITY])
    old[names.META_MODALITY] = modality
    preprocess = json.loads(meta[names.META_PREPROCESS])
    preprocess.pop("resize_algorithm", None)
    if modality == "text":
        preprocess["tokenizer"] = json.dumps(preprocess["tokenizer"], indent=2)  # raw whitespace
    old[names.META_PREPROCESS] = json.dumps(preprocess, ensure_ascii=False)
    return old


def test_every_toolkit_value_is_json_and_the_tokenizer_an_object() -> None:
    from tests.deploy.builders import keyword_model_proto

    for proto in (colour_model_proto(), keyword_model_proto()):
        meta = {p.key: p.value for p in proto.metadata_props}
        values = {k: json.loads(v) for k, v in meta.items() if k.startswith("toolkit.")}
        assert values[names.META_FORMAT_VERSION] == names.SINGLE_LABEL_FORMAT_VERSION == 2
        assert values[names.META_MODALITY] in ("image", "text")
        if values[names.META_MODALITY] == "text":
            assert isinstance(values[names.META_PREPROCESS]["tokenizer"], dict)
        else:
            assert values[names.META_PREPROCESS]["resize_algorithm"] == {
                "filter": "pillow-bilinear", "rounding": "round-half-even",
                "crop": "centre-floor", "pad": "centre-floor-black"}


def test_a_format_1_file_still_loads_and_predicts_the_same(tmp_path: Path) -> None:
    from tests.deploy.builders import COLOURS, keyword_model_proto, write_image
    from toolkit_deploy.predictor import Predictor

    image = tmp_path / "red.png"
    write_image(image, COLOURS["red"])
    for name, proto, sample in (("colour", colour_model_proto(), image),
                                ("keywords", keyword_model_proto(), "football tonight")):
        new = tmp_path / f"{name}-2.onnx"
        onnx.save(proto, new)
        meta = format_1({p.key: p.value for p in proto.metadata_props})
        del proto.metadata_props[:]
        onnx.helper.set_model_props(proto, meta)
        old = tmp_path / f"{name}-1.onnx"
        onnx.save(proto, old)
        a, b = Predictor(old), Predictor(new)
        assert a.spec.format_version == 1 and b.spec.format_version == 2
        assert a.spec.preprocess == b.spec.preprocess and a.spec.modality == b.spec.modality
        assert a.predict([sample]) == b.predict([sample])
        # Written again, a format-1 spec comes out in the current format.
        assert a.spec.to_metadata()[names.META_MODALITY] == json.dumps(b.spec.modality)


def test_format_2_refuses_a_bare_modality_and_a_tokenizer_string() -> None:
    from tests.deploy.builders import keyword_model_proto

    meta = spec().to_metadata()
    with pytest.raises(ModelFormatError, match="'toolkit.modality' is not valid JSON"):
        ModelSpec.from_metadata({**meta, names.META_MODALITY: "image"})
    text = {p.key: p.value for p in keyword_model_proto().metadata_props}
    preprocess = json.loads(text[names.META_PREPROCESS])
    preprocess["tokenizer"] = json.dumps(preprocess["tokenizer"])
    with pytest.raises(ModelFormatError, match="'tokenizer' must be a JSON object"):
        ModelSpec.from_metadata({**text, names.META_PREPROCESS: json.dumps(preprocess)})


def test_an_unknown_resize_algorithm_is_refused() -> None:
    meta = spec().to_metadata()
    preprocess = json.loads(meta[names.META_PREPROCESS])
    preprocess["resize_algorithm"]["filter"] = "lanczos"
    with pytest.raises(ModelFormatError, match="resizes with 'pillow-bilinear' only"):
        ModelSpec.from_metadata({**meta, names.META_PREPROCESS: json.dumps(preprocess)})


@pytest.mark.parametrize("resize", ["crop", "pad", "stretch"])
@pytest.mark.parametrize("size", [(37, 23), (23, 37), (11, 11), (64, 5)])
def test_the_named_resize_rules_reproduce_the_decoder(resize: str, size: tuple[int, int]) -> None:
    """The rules the spec names (docs/model-metadata.v3.schema.json), written out here from
    their descriptions with Pillow's bilinear filter, give the decoder's arrays exactly."""
    import numpy as np
    from PIL import Image

    from toolkit_deploy.decoders import create_decoder

    W, H = 16, 12
    pixels = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), np.uint8)
    image = Image.fromarray(pixels)
    w, h = image.size
    if resize == "stretch":
        expected = image.resize((W, H), Image.Resampling.BILINEAR)
    elif resize == "crop":
        s = max(W / w, H / h)
        scaled = (max(W, round(w * s)), max(H, round(h * s)))
        left, top = (scaled[0] - W) // 2, (scaled[1] - H) // 2
        expected = image.resize(scaled, Image.Resampling.BILINEAR).crop(
            (left, top, left + W, top + H))
    else:
        s = min(W / w, H / h)
        scaled = (max(1, round(w * s)), max(1, round(h * s)))
        expected = Image.new("RGB", (W, H))
        expected.paste(image.resize(scaled, Image.Resampling.BILINEAR),
                       ((W - scaled[0]) // 2, (H - scaled[1]) // 2))
    decoder = create_decoder("image", ImagePreprocess(height=H, width=W, resize=resize))
    assert np.array_equal(decoder(pixels), np.asarray(expected))
