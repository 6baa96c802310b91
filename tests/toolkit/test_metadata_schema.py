"""Exported files against the published JSON Schema of their metadata
(docs/model-metadata.v3.schema.json): every `toolkit.*` value parses as JSON, and the parsed
object is valid, for a real export and for a model of every modality."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import onnx
import pytest

from tests.deploy.builders import (
    colour_model_proto,
    colour_video_model_proto,
    keyword_model_proto,
    loudness_model_proto,
)
from tests.deploy.test_spec import format_1
from tests.toolkit.conftest import Trained
from toolkit_deploy import names

SCHEMA = (Path(__file__).resolve().parents[2] / "docs"
          / f"model-metadata.v{names.FORMAT_VERSION}.schema.json")


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["toolkit.format_version"]["enum"] == [
        names.SINGLE_LABEL_FORMAT_VERSION, names.FORMAT_VERSION]
    return jsonschema.Draft202012Validator(schema)


def parsed(meta: dict[str, str]) -> dict:
    """The toolkit.* values parsed as JSON, as a foreign client would (each must parse)."""
    return {k: json.loads(v) for k, v in meta.items() if k.startswith(names._PREFIX)}


def test_a_real_export_matches_the_schema(trained: Trained) -> None:
    meta = {p.key: p.value for p in onnx.load(trained.export.path).metadata_props}
    assert set(names.REQUIRED_META) <= set(meta)
    errors = list(validator().iter_errors(parsed(meta)))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize("build", [colour_model_proto, keyword_model_proto, loudness_model_proto,
                                   colour_video_model_proto])
def test_every_modality_matches_the_schema_and_format_1_does_not(build) -> None:
    meta = {p.key: p.value for p in build().metadata_props}
    errors = list(validator().iter_errors(parsed(meta)))
    assert not errors, [e.message for e in errors]
    old = format_1(meta)
    with pytest.raises(json.JSONDecodeError):  # the bare modality of format 1
        parsed(old)
    old[names.META_MODALITY] = json.dumps(old[names.META_MODALITY])
    assert not validator().is_valid(parsed(old))  # version 1, and no resize_algorithm/tokenizer


def test_a_multilabel_model_matches_the_schema(tmp_path: Path) -> None:
    from tests.deploy.test_labelsets import channel_model

    meta = {p.key: p.value for p in onnx.load(channel_model(tmp_path / "m.onnx")).metadata_props}
    assert names.META_TASK in meta
    errors = list(validator().iter_errors(parsed(meta)))
    assert not errors, [e.message for e in errors]
    task = json.loads(meta[names.META_TASK])
    for bad in ({**task, "thresholds": [1.5, 0.5, 0.5]}, {**task, "type": "regression"},
                {"type": "multilabel"}):
        meta[names.META_TASK] = json.dumps(bad)
        assert not validator().is_valid(parsed(meta))
