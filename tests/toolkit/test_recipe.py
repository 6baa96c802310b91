import tomllib
from pathlib import Path

import pytest

from toolkit.recipe import builtin_recipes, load_recipe, parse_override, parse_recipe


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
        ({"train.epochs": "many"}, TypeError, r"'train.epochs' must be int. Got 'many'"),
        ({"train.epochs": 0}, ValueError, r"'train.epochs' must be an int >= 1. Got 0"),
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
