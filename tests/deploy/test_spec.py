import json

import pytest

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
