"""`find_divergences`: when parity fails, the first operator where ONNX Runtime stops computing
what PyTorch computes, found with the real exporter and ONNX Runtime."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from tests.toolkit.unfaithful import OP_NAME, TRANSLATIONS, WRONG_SCALE, Swish, SwishNet
from toolkit.export.divergence import describe, find_divergences, program_divergences
from toolkit.models import create_model
from toolkit.models.layers import ACTIVATIONS
from toolkit.recipe import load_recipe
from toolkit_deploy.spec import TextPreprocess

#: One tiny model per built-in recipe (every family of the model registry).
REAL = {
    "image-cnn": {"data.image_size": 32, "data.channels": 3, "model.channels": [8, 16],
                  "model.hidden": [16]},
    "text-bag": {"data.max_length": 16, "model.embed_dim": 16, "model.buckets": 64,
                 "model.ngrams": 2, "model.hidden": [16]},
    "text-encoder": {"data.max_length": 16, "model.embed_dim": 16, "model.heads": 2,
                     "model.layers": 1},
    "audio-cnn": {"data.n_mels": 32, "model.channels": [8, 16], "model.hidden": [16]},
    "video-cnn": {"data.frames": 4, "data.image_size": 24, "model.channels": [8, 16],
                  "model.hidden": [16]},
}


def real_model(name: str) -> tuple[torch.nn.Module, np.ndarray]:
    """A freshly initialised toolkit model and a batch of 4 decoded-like samples for it."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    recipe = load_recipe(name, REAL[name])
    if recipe.modality == "text":
        # The model needs only the vocabulary's size and padding id, not a trained tokenizer.
        preprocess = TextPreprocess(tokenizer="{}", max_length=recipe.data.max_length, pad_id=0,
                                    vocab_size=50)
    else:
        preprocess = recipe.data.preprocess()
    shape = (4, *preprocess.input_shape)
    if preprocess.input_dtype == "uint8":
        batch = rng.integers(0, 256, shape, dtype=np.uint8)
    elif preprocess.input_dtype == "int64":
        batch = rng.integers(1, 50, shape, dtype=np.int64)
        batch[0, 6:] = 0  # a padded text too
    else:
        batch = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    return create_model(recipe, 3, preprocess).eval(), batch


def swap_activations(model: torch.nn.Module) -> list[str]:
    """Replace every activation module by the unfaithfully exported `Swish`; their paths."""
    swapped = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, tuple(ACTIVATIONS.values())):
                setattr(parent, name, Swish())
                swapped.append(f"{parent_name}.{name}" if parent_name else name)
    return swapped


def test_names_the_unfaithful_operator_first() -> None:
    torch.manual_seed(0)
    model = SwishNet().eval()
    x = torch.randn(6, 8)

    found = find_divergences(model, x, custom_translation_table=TRANSLATIONS)

    assert [(d.value, d.op_type, d.node) for d in found] == [
        ("swish", "Mul", "node_swish"), ("logits", "Gemm", "node_linear_1"),
        ("probabilities", "Softmax", "node_softmax")]
    first = found[0]
    assert re.fullmatch(rf"{re.escape(OP_NAME)} in model\.act \(Swish\) at \S*unfaithful\.py:\d+",
                        first.torch_op)
    assert found[1].torch_op.startswith("aten.linear in model.fc2 (Linear)")
    assert [d.starts_here for d in found] == [True, False, False]
    # Every sample is compared (6 <= max_samples): the difference is exactly the translation's.
    with torch.no_grad():
        h = model.fc1(x)
    expected = (h * torch.sigmoid(WRONG_SCALE * h) - h * torch.sigmoid(h)).abs().max().item()
    assert first.max_abs == pytest.approx(expected, rel=1e-3)
    assert first.size == h.numel() and 0 < first.count <= first.size


def test_describe_says_where_and_what_to_do() -> None:
    torch.manual_seed(0)
    found = find_divergences(SwishNet().eval(), torch.randn(4, 8), limit=2,
                             custom_translation_table=TRANSLATIONS)

    text = describe(found)

    assert len(found) == 2
    lines = text.splitlines()
    assert len(lines) == 4  # header, two values, fix
    assert lines[1].startswith(f"  1. value `swish` of node `node_swish` (Mul) ← {OP_NAME} in "
                               "model.act (Swish) at ")
    assert "starts here: its inputs agree" in lines[1]
    assert "inherited from an earlier value" in lines[2]
    assert lines[3].startswith(f"Fix: PyTorch's `{OP_NAME}` (value `swish`) is where")
    assert describe([]).startswith("Every intermediate value of the ONNX graph agrees")


def test_compares_the_samples_that_differ_most() -> None:
    torch.manual_seed(0)
    model = SwishNet().eval()
    with torch.no_grad():
        model.fc1.bias.zero_()
    x = torch.zeros(20, 8)  # swish(0) is 0 in both translations: only the last sample differs
    x[-1] = torch.randn(8)

    found = find_divergences(model, x, max_samples=1, custom_translation_table=TRANSLATIONS)

    assert found[0].value == "swish"
    assert found[0].size == 16  # one sample of 16 hidden units


def test_takes_an_already_exported_program() -> None:
    torch.manual_seed(0)
    model = SwishNet().eval()
    x = torch.randn(3, 8)
    program = torch.onnx.export(model, (x,), dynamo=True, verbose=False,
                                custom_translation_table=TRANSLATIONS)

    found = program_divergences(program, x.numpy())

    assert found[0].value == "swish" and found[0].starts_here
    assert found[0].torch_op.startswith(f"{OP_NAME} in act (Swish)")
    assert found[-1].op_type == "Gemm"  # the program's own output name, not the toolkit's


def test_a_faithful_conv_relu_linear_net_has_no_divergence() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()

    assert find_divergences(model, torch.randn(4, 3, 16, 16)) == []
    # Not because nothing was compared: at zero tolerance float rounding shows, from the conv.
    exact = program_divergences(torch.onnx.export(model, (torch.randn(2, 3, 16, 16),),
                                                  dynamo=True, verbose=False),
                                torch.randn(2, 3, 16, 16), atol=0.0, rtol=0.0)
    assert exact and all(d.max_abs < 1e-5 for d in exact)


@pytest.mark.parametrize("name", list(REAL))
def test_real_models(name: str) -> None:
    model, batch = real_model(name)
    assert find_divergences(model, batch) == []

    swapped = swap_activations(model)
    found = find_divergences(model, batch, custom_translation_table=TRANSLATIONS)

    assert swapped and found, describe(found)
    first = found[0]
    assert first.starts_here
    assert first.op_type == "Mul"
    module = re.fullmatch(rf"{re.escape(OP_NAME)} in (\S+) \(Swish\) at \S+:\d+", first.torch_op)
    assert module and module[1] in {f"model.{path}" for path in swapped}


def test_bad_options_are_refused_before_exporting() -> None:
    model = SwishNet()
    with pytest.raises(ValueError, match="limit and max_samples must be >= 1. Got limit=0"):
        find_divergences(model, torch.randn(2, 8), limit=0)
    with pytest.raises(ValueError, match="atol and rtol must be >= 0"):
        find_divergences(model, torch.randn(2, 8), atol=-1.0)
    with pytest.raises(ValueError, match="opset must be >= 18"):
        find_divergences(model, torch.randn(2, 8), opset=17)
    with pytest.raises(ValueError, match="at least one sample. Got shape \\(0, 8\\)"):
        find_divergences(model, np.zeros((0, 8), np.float32))
    with pytest.raises(TypeError, match="numpy array or a torch tensor. Got list"):
        find_divergences(model, [[0.0] * 8])
