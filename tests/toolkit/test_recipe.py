import tomllib
from pathlib import Path

import pytest

from toolkit.recipe import (
    AudioData,
    ImageData,
    TextData,
    VideoData,
    builtin_recipes,
    load_recipe,
    parse_override,
    parse_recipe,
)
from toolkit_deploy.spec import AudioPreprocess, ImagePreprocess, TextPreprocess, VideoPreprocess


@pytest.mark.parametrize("name", sorted(builtin_recipes()))
def test_builtin_recipes_load_and_round_trip_through_toml(name: str) -> None:
    recipe = load_recipe(name)
    assert recipe.name == name
    again = parse_recipe(tomllib.loads(recipe.to_toml()))
    assert again == recipe


def test_image_cnn_has_the_design_keys() -> None:
    r = load_recipe("image-cnn")
    for section, key in [("data", "val_fraction"), ("model", "family"), ("model", "activation"),
                         ("model", "hidden"), ("model", "dropout"), ("optim", "name"),
                         ("optim", "lr"), ("optim", "weight_decay"), ("optim", "momentum"),
                         ("optim", "schedule"), ("train", "epochs"), ("train", "batch_size"),
                         ("train", "loss"), ("train", "seed")]:
        assert hasattr(getattr(r, section), key), f"{section}.{key}"


def test_overrides_are_typed_and_validated() -> None:
    r = load_recipe("image-cnn", {"optim.lr": 1, "model.hidden": [64, 32], "train.epochs": 3})
    assert r.optim.lr == 1.0 and isinstance(r.optim.lr, float)
    assert r.model.hidden == (64, 32) and r.train.epochs == 3


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"optim.lrr": 0.1}, ValueError,
         r"Unknown recipe key\(s\) optim.lrr. Valid keys of \[optim\]: name, lr, weight_decay"),
        ({"train.epochs": "many"}, TypeError,
         r"'train.epochs' must be an int or \"auto\". Got 'many'"),
        ({"train.epochs": 0}, ValueError, r"'train.epochs' must be an int >= 1 or \"auto\". Got 0"),
        ({"optim.lr": -1.0}, ValueError, r"'optim.lr' must be a float > 0. Got -1.0"),
        ({"model.hidden": 64}, TypeError, r"'model.hidden' must be a list of int"),
        ({"train.seed": True}, TypeError, r"'train.seed' must be int"),
        ({"data.resize": "zoom"}, ValueError, r"'data.resize' must be one of"),
        ({"lr": 0.1}, ValueError, r"must be section.key"),
    ],
)
def test_bad_overrides_name_the_key(overrides: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_recipe("image-cnn", overrides)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("optim.lr=0.01", ("optim.lr", 0.01)), ("optim.name=sgd", ("optim.name", "sgd")),
     ("model.hidden=[64, 32]", ("model.hidden", [64, 32])), ("x.y = true", ("x.y", True)),
     ('optim.name="adam"', ("optim.name", "adam"))],
)
def test_parse_override(text: str, expected: tuple) -> None:
    assert parse_override(text) == expected


def test_parse_override_needs_an_equals_sign() -> None:
    with pytest.raises(ValueError, match="section.key=value"):
        parse_override("optim.lr")


def test_unknown_recipe_and_user_recipe_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Built-in recipes: audio-cnn, image-cnn, text-bag"):
        load_recipe("no-such-recipe")
    mine = tmp_path / "mine.toml"
    mine.write_text('name = "mine"\nmodality = "image"\n[train]\nepochs = 2\n')
    recipe = load_recipe(mine)
    assert recipe.train.epochs == 2 and recipe.model.family == "cnn"  # defaults fill the rest
    mine.write_text('name = "mine"\nmodality = "image"\n[trian]\nepochs = 2\n')
    with pytest.raises(ValueError, match="unknown top-level key"):
        load_recipe(mine)
    mine.write_text("name = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_recipe(mine)


@pytest.mark.parametrize(("name", "key", "value", "match"), [
    ("image-cnn", "model.hidden", [4_000_000_000], r"'model.hidden' must be at most 64 widths, "
                                                  r"each in \[1, 65536\]"),
    ("image-cnn", "model.hidden", [8] * 1000, "Got '1000 widths'"),
    ("image-cnn", "model.channels", [16, 10**9], "'model.channels' must be at most 64 widths"),
    ("image-cnn", "data.image_size", 100_000, r"'data.image_size' must be an int in \[8, 4096\]"),
    ("video-cnn", "data.image_size", 100_000, r"'data.image_size' must be an int in \[8, 4096\]"),
    ("text-bag", "model.embed_dim", 4_000_000_000, r"'model.embed_dim' must be an int in"),
    ("text-bag", "model.buckets", 10**12, r"'model.buckets' must be an int in"),
    ("text-encoder", "model.layers", 10**6, r"'model.layers' must be an int in \[1, 64\]"),
])
def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path: Path, name: str,
                                                               key: str, value: object,
                                                               match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_recipe(name, {key: value})
    from click.testing import CliRunner

    from toolkit_deploy.cli import main

    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(main, ["train", name, "--data", str(tmp_path / "data"), "--out",
                                       str(tmp_path / "run"), f"--set={key}={value!r}"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert key in result.output


def test_deeply_nested_toml_is_a_clear_error(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.toml"
    path.write_text(f'name = "deep"\nmodality = "image"\n\n[model]\nhidden = {deep}\n',
                    encoding="utf-8")
    with pytest.raises(ValueError, match="deep.toml nests arrays or tables too deeply"):
        load_recipe(path)
    with pytest.raises(ValueError, match="--set model.hidden nests arrays"):
        parse_override(f"model.hidden={deep}")
    from click.testing import CliRunner

    from toolkit_deploy.cli import main

    result = CliRunner().invoke(main, ["train", str(path), "--data", str(tmp_path),
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "too deeply" in result.output
    assert not isinstance(result.exception, RecursionError)


@pytest.mark.parametrize(("section", "preprocess", "own"), [
    (ImageData, ImagePreprocess, {"mean", "std", "channels"}),  # one value for every channel; auto
    (TextData, TextPreprocess, set()),
    (AudioData, AudioPreprocess, {"f_min"}),  # the recipe says 20 Hz, the runtime 0 Hz
    (VideoData, VideoPreprocess, set()),
])
def test_data_sections_take_the_runtimes_preprocessing_defaults(section, preprocess,
                                                                own: set[str]) -> None:
    import dataclasses

    runtime = {f.name: f.default for f in dataclasses.fields(preprocess)
               if f.default is not dataclasses.MISSING}
    recipe = {f.name: f.default for f in dataclasses.fields(section)}
    shared = (set(runtime) & set(recipe)) - own
    assert shared and {k: recipe[k] for k in shared} == {k: runtime[k] for k in shared}
