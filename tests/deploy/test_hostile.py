"""Hostile and broken model files: external data that leaves the model's folder, metadata that is
missing, malformed or from a newer format, and a model whose output is NaN for some inputs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from tests.deploy.builders import COLOURS, colour_model_proto, keyword_model_proto, write_image
from toolkit_deploy import Predictor, names
from toolkit_deploy.cli import EXIT_PARTIAL, main
from toolkit_deploy.errors import ModelFormatError, ModelOutputError
from toolkit_deploy.evaluate import evaluate
from toolkit_deploy.onnxproto import external_data_locations
from toolkit_deploy.pipeline import output_error
from toolkit_deploy.score import score
from toolkit_deploy.spec import AudioPreprocess, ImagePreprocess, ModelSpec, ParityReport

# --- external data -------------------------------------------------------------------------------


def external_model(folder: Path, location: str) -> Path:
    """The colour model with its `scale` weight in the external file `location` (relative), as
    onnx.save(..., save_as_external_data=True) stores it (`axes` stays inside: ONNX Runtime's
    shape inference needs it)."""
    model = colour_model_proto()
    scale = next(t for t in model.graph.initializer if t.name == "scale")
    data = numpy_helper.to_array(scale).tobytes()
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    (folder / location).write_bytes(data)
    set_external_data(scale, location=location, offset=0, length=len(data))
    scale.data_location = TensorProto.EXTERNAL
    scale.ClearField("raw_data")
    scale.ClearField("float_data")
    path = folder / "colour.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def relocate(path: Path, location: str) -> None:
    """Point every external tensor of the model at `location` (as a hostile file would)."""
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def colour_images(folder: Path) -> list[Path]:
    return [write_image(folder / f"{label}.png", colour) for label, colour in COLOURS.items()]


@pytest.mark.parametrize("location", ["colour.onnx.data", "weights/colour.data"])
def test_external_data_inside_the_folder_loads(tmp_path: Path, location: str) -> None:
    path = external_model(tmp_path / "model", location)
    assert external_data_locations(path.read_bytes()) == [location]
    predictor = Predictor(path)
    assert predictor.predict(colour_images(tmp_path / "images")) == list(COLOURS)
    result = CliRunner().invoke(main, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output


def hostile_locations(tmp_path: Path) -> dict[str, str]:
    """Name → a location that leads out of the model's folder to an existing data file."""
    folder = tmp_path / "model"
    path = external_model(folder, "colour.onnx.data")
    outside = tmp_path / "outside.data"
    os.replace(folder / "colour.onnx.data", outside)  # the data really is there, outside
    (folder / "link.data").symlink_to(outside)
    assert path.is_file()
    return {"dotdot": "../outside.data", "absolute": str(outside), "symlink": "link.data",
            "deeper dotdot": "sub/../../outside.data"}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "deeper dotdot"])
def test_external_data_outside_the_folder_is_refused_before_onnxruntime(tmp_path: Path,
                                                                        kind: str) -> None:
    location = hostile_locations(tmp_path)[kind]
    path = tmp_path / "model" / "colour.onnx"
    relocate(path, location)
    expected = "absolute" if kind == "absolute" else "outside the model's folder"
    with pytest.raises(ModelFormatError, match=expected) as caught:
        Predictor(path)
    # Our check, not ONNX Runtime's own (which wraps as "ONNX Runtime cannot load").
    assert "ONNX Runtime cannot load" not in str(caught.value)
    assert repr(location) in str(caught.value) and "relative" in str(caught.value)
    for args in (["inspect", str(path)],
                 ["score", str(path), str(tmp_path / "model"), "--out", str(tmp_path / "p.csv")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and expected in result.output, result.output
    assert not (tmp_path / "p.csv").exists()


def test_missing_or_irregular_external_data_is_a_clear_error(tmp_path: Path) -> None:
    path = external_model(tmp_path / "model", "colour.onnx.data")
    (tmp_path / "model" / "colour.onnx.data").unlink()
    with pytest.raises(ModelFormatError, match="is nothing. Copy the model's data file next"):
        Predictor(path)
    (tmp_path / "model" / "colour.onnx.data").mkdir()
    with pytest.raises(ModelFormatError, match="is something that is not a regular file"):
        Predictor(path)
    (tmp_path / "model" / "a").symlink_to("b")
    (tmp_path / "model" / "b").symlink_to("a")
    relocate(path, "a")
    with pytest.raises(ModelFormatError, match="'a', which cannot be resolved"):
        Predictor(path)


def test_every_place_a_tensor_can_live_is_checked() -> None:
    """Initializers, Constant attributes, sub-graphs (If branches), sparse tensors, functions."""

    def tensor(name: str, location: str) -> TensorProto:
        t = numpy_helper.from_array(np.ones(2, np.float32), name)
        set_external_data(t, location=location)
        t.data_location = TensorProto.EXTERNAL
        t.ClearField("raw_data")
        return t

    branch = helper.make_graph([], "branch", [], [], initializer=[tensor("b", "../branch")])
    sparse = helper.make_sparse_tensor(tensor("v", "../sparse"),
                                       numpy_helper.from_array(np.array([0], np.int64), "i"),
                                       [4])
    nodes = [helper.make_node("Constant", [], ["c"], value=tensor("c", "/abs/const")),
             helper.make_node("If", ["cond"], ["o"], then_branch=branch, else_branch=branch)]
    graph = helper.make_graph(nodes, "g", [], [], initializer=[tensor("w", "w.data")],
                              sparse_initializer=[sparse])
    function = helper.make_function(
        "local", "f", [], ["y"],
        [helper.make_node("Constant", [], ["y"], value=tensor("f", "../function"))],
        [helper.make_opsetid("", 18)])
    model = helper.make_model(graph, functions=[function])
    found = external_data_locations(model.SerializeToString())
    assert sorted(found) == sorted(["../branch", "../branch", "../sparse", "/abs/const",
                                    "w.data", "../function"])


def test_a_file_that_is_not_protobuf_is_refused(tmp_path: Path) -> None:
    for name, data in (("empty", b""), ("text", b"not a model"),
                       ("truncated", colour_model_proto().SerializeToString()[:-7])):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        with pytest.raises(ModelFormatError, match=f"{name}.onnx"):
            Predictor(path)


# --- metadata ------------------------------------------------------------------------------------


def metadata() -> dict[str, str]:
    return {p.key: p.value for p in colour_model_proto().metadata_props}


def model_with(tmp_path: Path, meta: dict[str, str]) -> Path:
    model = colour_model_proto()
    del model.metadata_props[:]
    helper.set_model_props(model, meta)
    path = tmp_path / "altered.onnx"
    onnx.save(model, path)
    return path


JSON_KEYS = [names.META_LABELS, names.META_PREPROCESS, names.META_INPUT, names.META_PROVENANCE,
             names.META_PARITY]


@pytest.mark.parametrize("key", JSON_KEYS)
def test_bad_json_names_the_key(tmp_path: Path, key: str) -> None:
    meta = {**metadata(), key: '{"unterminated": '}
    pattern = f"metadata '{key}' is not valid JSON"
    with pytest.raises(ModelFormatError, match=pattern.replace(".", r"\.")):
        Predictor(model_with(tmp_path, meta))
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "altered.onnx")])
    assert result.exit_code == 1 and pattern in result.output


def preprocess_with(**changes: object) -> str:
    return json.dumps({**json.loads(metadata()[names.META_PREPROCESS]), **changes})


def parity_with(**changes: object) -> str:
    return json.dumps({**json.loads(metadata()[names.META_PARITY]), **changes})


WRONG_TYPES = {
    "height is a string": (names.META_PREPROCESS, preprocess_with(height="8"),
                           "key 'height' must be an integer"),
    "mean holds strings": (names.META_PREPROCESS, preprocess_with(mean=["a", "b", "c"]),
                           "key 'mean' item must be a finite number"),
    "std is infinite": (names.META_PREPROCESS, preprocess_with(std=[1e999, 1, 1]),
                        "key 'std' item must be a finite number"),
    "preprocess is a list": (names.META_PREPROCESS, "[1, 2]", "must be a JSON object"),
    "a preprocess key is missing": (names.META_PREPROCESS, json.dumps({"height": 8}),
                                    r"lacks the keys \['width'\]"),
    "parity count is text": (names.META_PARITY, parity_with(n_samples="many"),
                             "key 'n_samples' must be an integer"),
    "parity verdict is a number": (names.META_PARITY, parity_with(passed=1),
                                   "key 'passed' must be true or false"),
    "parity is a string": (names.META_PARITY, '"passed"', "must be a JSON object"),
    "labels are numbers": (names.META_LABELS, "[1, 2, 3]", "non-empty JSON list of strings"),
    "labels repeat": (names.META_LABELS, '["red", "red", "blue"]', r"names \['red'\] more than"),
    "provenance is a list": (names.META_PROVENANCE, "[]", "must be a JSON object"),
    "input is a number": (names.META_INPUT, "3", "must be a JSON object"),
    "opset is not a number": (names.META_OPSET, "eighteen", "must be a non-negative integer"),
    "version is a float": (names.META_FORMAT_VERSION, "1.5", "must be a non-negative integer"),
    "version is zero": (names.META_FORMAT_VERSION, "0", "must be >= 1"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_wrong_types_name_the_key(tmp_path: Path, case: str) -> None:
    key, value, message = WRONG_TYPES[case]
    with pytest.raises(ModelFormatError, match=message) as caught:
        Predictor(model_with(tmp_path, {**metadata(), key: value}))
    assert f"'{key}'" in str(caught.value)


def test_audio_spec_with_an_infinite_window_is_a_format_error() -> None:
    """Found by fuzzing: `window: Infinity` (valid JSON for Python) raised OverflowError."""
    spec = ModelSpec("audio", ("a", "b"), AudioPreprocess(), 18)
    meta = spec.to_metadata()
    meta[names.META_PREPROCESS] = meta[names.META_PREPROCESS].replace('"window": 1.0',
                                                                      '"window": Infinity')
    with pytest.raises(ModelFormatError, match="'window' must be a finite number"):
        ModelSpec.from_metadata(meta)


def test_missing_metadata_names_the_key(tmp_path: Path) -> None:
    meta = metadata()
    del meta[names.META_PREPROCESS]
    with pytest.raises(ModelFormatError, match=r"lacks \['toolkit\.preprocess'\]"):
        Predictor(model_with(tmp_path, meta))


def test_a_newer_format_says_to_upgrade_before_anything_else(tmp_path: Path) -> None:
    meta = {**metadata(), names.META_FORMAT_VERSION: str(names.FORMAT_VERSION + 1)}
    del meta[names.META_LABELS]  # a newer format may have renamed it: the version speaks first
    newer = names.FORMAT_VERSION + 1
    with pytest.raises(ModelFormatError, match=rf"uses model format {newer} \(metadata "
                                               r"'toolkit\.format_version'\).*pip install -U "
                                               "toolkit-deploy"):
        Predictor(model_with(tmp_path, meta))
    # always written
    assert metadata()[names.META_FORMAT_VERSION] == str(names.SINGLE_LABEL_FORMAT_VERSION)


def test_a_tokenizer_that_does_not_load_is_a_format_error(tmp_path: Path) -> None:
    model = keyword_model_proto()
    meta = {p.key: p.value for p in model.metadata_props}
    pre = json.loads(meta[names.META_PREPROCESS])
    meta[names.META_PREPROCESS] = json.dumps({**pre, "tokenizer": {"model": "garbage"}})
    del model.metadata_props[:]
    helper.set_model_props(model, meta)
    onnx.save(model, tmp_path / "text.onnx")
    with pytest.raises(ModelFormatError, match="tokenizer .* cannot be loaded by tokenizers"):
        Predictor(tmp_path / "text.onnx")


# --- NaN / Inf outputs ---------------------------------------------------------------------------

SIZE = 8


def nan_model_proto() -> onnx.ModelProto:
    """The colour model, plus log(brightness - 40) added to every logit: bright images are
    classified by colour as usual, images darker than 40 give NaN logits and probabilities."""
    nodes = [
        helper.make_node("Cast", [names.INPUT], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "hw"], ["mean"], keepdims=0),
        helper.make_node("ReduceMean", ["mean", "c"], ["brightness"], keepdims=1),
        helper.make_node("Sub", ["brightness", "forty"], ["excess"]),
        helper.make_node("Log", ["excess"], ["shift"]),  # NaN below 40
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], [names.LOGITS]),
        helper.make_node("Softmax", [names.LOGITS], [names.PROBABILITIES], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "nan_when_dark",
        [helper.make_tensor_value_info(names.INPUT, TensorProto.UINT8,
                                       [names.BATCH_AXIS, SIZE, SIZE, 3])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [names.BATCH_AXIS, 3])
         for n in names.OUTPUTS],
        initializer=[numpy_helper.from_array(np.array([1, 2], np.int64), "hw"),
                     numpy_helper.from_array(np.array([1], np.int64), "c"),
                     numpy_helper.from_array(np.array(40.0, np.float32), "forty"),
                     numpy_helper.from_array(np.array(10.0 / 255.0, np.float32), "scale")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    spec = ModelSpec(
        modality="image", labels=tuple(COLOURS),
        preprocess=ImagePreprocess(height=SIZE, width=SIZE, resize="stretch"),
        opset=18, provenance={"recipe": {"name": "test"}},
        parity=ParityReport(True, 64, (1, 16), 1e-7, 1e-6, 1e-8, 1.0, 1e-4, 1e-3, 1.0),
    )
    helper.set_model_props(model, spec.to_metadata())
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def nan_case(tmp_path: Path) -> tuple[Path, Path]:
    """The model, and a folder: a bright image per colour and two dark ones (NaN outputs)."""
    path = tmp_path / "nan.onnx"
    onnx.save(nan_model_proto(), path)
    folder = tmp_path / "images"
    for label, colour in COLOURS.items():
        write_image(folder / label / f"{label}.png", colour)
    write_image(folder / "dark" / "night.png", (20, 12, 12))
    write_image(folder / "dark" / "shadow.png", (15, 20, 15))
    return path, folder


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def test_nan_outputs_are_error_rows_and_the_others_are_scored(nan_case: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    model, folder = nan_case
    out = tmp_path / "preds.csv"
    summary = score(model, folder, out, progress=False, top_k=2, probs=True, batch_size=4)
    assert (summary.n_files, summary.n_scored, summary.n_failed) == (5, 3, 2)
    rows = read_rows(out)
    for name in ("dark/night.png", "dark/shadow.png"):
        assert rows[name]["error"].startswith("ModelOutputError: the model's output contains "
                                              "NaN or Inf")
        assert rows[name]["label"] == rows[name]["score"] == rows[name]["prob_red"] == ""
    for label in COLOURS:
        row = rows[f"{label}/{label}.png"]
        assert row["label"] == label and row["error"] == ""
        assert np.isfinite(float(row["score"]))
    out_cli = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(main, ["score", str(model), str(folder), "--out", str(out_cli),
                                       "-q"])
    assert result.exit_code == EXIT_PARTIAL, result.output
    lines = [json.loads(line) for line in out_cli.read_text().splitlines()]
    assert sum("NaN or Inf" in line["error"] for line in lines) == 2
    assert "nan" not in out_cli.read_text().lower().replace("nan or inf", "")


def test_nan_outputs_in_the_python_api(nan_case: tuple[Path, Path]) -> None:
    model, folder = nan_case
    predictor = Predictor(model)
    assert predictor.predict([folder / "red" / "red.png"]) == ["red"]
    with pytest.raises(ModelOutputError, match=r"NaN or Inf for 1 of 2 inputs \(at positions "
                                               r"\[1\]\)"):
        predictor.predict([folder / "blue" / "blue.png", folder / "dark" / "night.png"])
    batch = np.stack([predictor.decode(folder / "dark" / "shadow.png")] * 3)
    with pytest.raises(ModelOutputError, match="for 3 of 3 inputs"):
        predictor.predict_proba(batch)
    logits, probs = predictor.run(batch)  # the raw graph outputs stay available, as they are
    assert np.isnan(probs).all()


def test_nan_outputs_are_not_counted_by_evaluate(nan_case: tuple[Path, Path],
                                                 tmp_path: Path) -> None:
    model, folder = nan_case
    labelled = tmp_path / "labelled"
    for label, colour in COLOURS.items():
        write_image(labelled / label / "bright.png", colour)
    write_image(labelled / "red" / "dark.png", (30, 5, 5))
    figures = evaluate(model, labelled)
    assert figures["n_samples"] == 3 and figures["accuracy"] == 1.0
    assert figures["n_failed"] == 1 and "NaN or Inf" in figures["errors"][0]["error"]


def test_output_error_flags_nan_and_inf_only() -> None:
    assert output_error(np.array([0.2, 0.8], np.float32)) == ""
    assert "NaN or Inf" in output_error(np.array([np.nan, 1.0], np.float32))
    assert "NaN or Inf" in output_error(np.array([np.inf, 0.0], np.float32))
