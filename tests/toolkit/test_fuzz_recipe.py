"""Property-based fuzzing of the recipe loader: random and mutated TOML files, random overrides.

The property: `load_recipe` returns a valid `Recipe` whose TOML form loads back to an equal one,
or raises the errors it documents (`ValueError`, `TypeError`) with a message naming the file or
the key. Anything else that escapes is a bug.
"""

from __future__ import annotations

import math
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.deploy.fuzzing import fuzz, mutated
from toolkit.recipe import SECTIONS, Recipe, builtin_recipes, load_recipe, parse_override

_FILES = Path(tempfile.mkdtemp(prefix="toolkit-fuzz-recipe-"))
NAMES = sorted(builtin_recipes())


@cache
def recipe_text(name: str) -> str:
    return builtin_recipes()[name].read_text(encoding="utf-8")


@cache
def valid_keys() -> list[str]:
    """Every `section.key` of every built-in recipe."""
    keys = set()
    for name in NAMES:
        data = tomllib.loads(recipe_text(name))
        keys |= {f"{s}.{k}" for s in SECTIONS for k in data.get(s, {})}
    return sorted(keys)


#: Values TOML can hold: numbers (inf and nan too), strings, booleans, arrays and tables.
TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)


def load_or_refuse(source: str | Path, overrides: dict[str, Any] | None = None) -> Recipe | None:
    """The recipe, checked to round-trip through its TOML form, or None when it was refused with
    a documented error."""
    try:
        recipe = load_recipe(source, overrides)
    except (ValueError, TypeError) as e:
        assert str(e), "a refusal must say why"
        return None
    path = _FILES / "resolved.toml"
    path.write_text(recipe.to_toml(), encoding="utf-8")
    assert load_recipe(path) == recipe, "the resolved recipe must load back unchanged"
    return recipe


@pytest.fixture(scope="module", autouse=True)
def _remove_files() -> Any:
    yield
    import shutil

    shutil.rmtree(_FILES, ignore_errors=True)


def write(data: bytes) -> Path:
    path = _FILES / "recipe.toml"
    path.write_bytes(data)
    return path


@fuzz(400)
@given(st.sampled_from(NAMES).flatmap(lambda name: mutated(recipe_text(name).encode())))
@example(b"\xff\xfe not utf-8")
@example(b"name = 'x'\nmodality = 'audio'\n[data]\nwindow = inf\n")
@example(b"name = 'x'\nmodality = 'image'\n[data]\nmean = [nan, 0.5, 0.5]\n")
@example(b"name = 'x'\nmodality = 'text'\n[data]\nencoding = 'utf\\u00008'\n")
def test_mutated_recipe_files(data: bytes) -> None:
    load_or_refuse(write(data))


@fuzz(200)
@given(st.text(max_size=300))
@example("a = [" * 2000)
def test_random_text_as_a_recipe_file(text: str) -> None:
    load_or_refuse(write(text.encode("utf-8", "surrogatepass")))


@fuzz(400)
@given(st.sampled_from(NAMES),
       st.dictionaries(st.sampled_from(valid_keys()) | st.text(max_size=12), TOML_VALUES,
                       max_size=3))
@example("audio-cnn", {"data.window": 1e308})
@example("audio-cnn", {"data.window": 1e308, "data.max_seconds": 1e308})
@example("image-cnn", {"data": {"image_size": 8}})
def test_random_overrides(name: str, overrides: dict[str, Any]) -> None:
    recipe = load_or_refuse(name, overrides)
    if recipe is not None:  # the overrides that are recipe keys were applied
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            got = getattr(getattr(recipe, section), key)
            expected = tuple(value) if isinstance(value, list) else value
            assert got == expected or (isinstance(got, float) and math.isclose(got, expected))


@fuzz(300)
@given(st.sampled_from(NAMES), st.lists(st.text(max_size=40), max_size=3))
@example("text-bag", ["optim.lr=nan"])
@example("text-bag", ["data.max_length=1e400"])
def test_random_set_options(name: str, texts: list[str]) -> None:
    overrides = {}
    for text in texts:
        try:
            key, value = parse_override(text)
        except ValueError:
            continue
        overrides[key] = value
    load_or_refuse(name, overrides)
