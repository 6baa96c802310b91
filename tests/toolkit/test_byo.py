"""Bring your own model: a hand-written ResNet and a small transformer encoder, exported with the
toolkit's metadata and parity gates (API and CLI), scored by the runtime like any toolkit model."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from click.testing import CliRunner

import toolkit
from tests.toolkit.test_text import TINY_TEXT, write_chinese
from toolkit.export.byo import load_export_spec
from toolkit.recipe import load_recipe
from toolkit.training.tokenizer import train_tokenizer
from toolkit_deploy.cli import main
from toolkit_deploy.dataset import read_labelled
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DatasetError
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import ImagePreprocess

# The module file a user would write: the CLI imports it by path.
RESNET_SOURCE = '''
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, n_classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.layers = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc(self.layers(self.stem(x)).mean(dim=(2, 3)))


def resnet():
    return ResNet()
'''


class TinyEncoder(nn.Module):
    """Token + position embeddings → 2 transformer encoder layers → masked mean → linear."""

    def __init__(self, vocab_size: int, length: int, n_classes: int, pad_id: int) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, 32, padding_idx=pad_id)
        self.position = nn.Parameter(torch.randn(1, length, 32) * 0.02)
        layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pad = ids == self.pad_id
        x = self.encoder(self.embed(ids) + self.position, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(1) / keep.sum(1).clamp(min=1.0))


def _namespace(source: str) -> dict:
    scope: dict = {}
    exec(compile(source, "resnet.py", "exec"), scope)  # the same code the CLI imports from file
    return scope


def fit(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, steps: int) -> nn.Module:
    """A few full-batch Adam steps: enough that the model means something, in a second."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def image_preprocess() -> ImagePreprocess:
    return ImagePreprocess(height=32, width=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def resnet(shapes: Path, image_preprocess: ImagePreprocess) -> tuple[nn.Module, tuple[str, ...]]:
    data = read_labelled(shapes, (".png",))
    decoder = create_decoder("image", image_preprocess)
    pixels = torch.from_numpy(np.stack([decoder(p) for p in data.paths]))
    inputs = (pixels.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    model = _namespace(RESNET_SOURCE)["ResNet"](len(data.classes))
    torch.manual_seed(0)
    return fit(model, inputs, torch.tensor(data.targets), steps=25), data.classes


def test_resnet_exports_with_parity_and_scores_like_pytorch(
    resnet: tuple[nn.Module, tuple[str, ...]], shapes: Path, image_preprocess: ImagePreprocess,
    tmp_path: Path,
) -> None:
    model, classes = resnet
    out = tmp_path / "resnet.onnx"
    result = toolkit.export_model(model, torch.zeros(2, 3, 32, 32), labels=classes,
                          preprocess=image_preprocess, out=out, samples=shapes, n_samples=40)
    assert result.report.passed and result.report.n_samples == 40
    assert result.report.max_abs_diff < 1e-4 and result.report.top1_agreement == 1.0

    predictor = Predictor(out)
    assert predictor.spec.labels == classes and predictor.spec.modality == "image"
    assert predictor.spec.parity.passed
    assert predictor.spec.provenance["source"] == "export_model"
    files = read_labelled(shapes, (".png",)).paths[::7]
    pixels = np.stack([predictor.decode(p) for p in files])
    with torch.no_grad():
        expected = model((torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255 - 0.5)
                         / 0.25).argmax(1).numpy()
    logits, _ = predictor.run(pixels)
    np.testing.assert_array_equal(logits.argmax(1), expected)


def test_resnet_through_the_cli_with_module_weights_and_spec(
    resnet: tuple[nn.Module, tuple[str, ...]], shapes: Path, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    model, classes = resnet
    (tmp_path / "resnet.py").write_text(RESNET_SOURCE)
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    (tmp_path / "spec.toml").write_text(
        f'name = "hand-written resnet"\nmodality = "image"\nlabels = {json.dumps(classes)}\n'
        f'samples = "{shapes}"\n[preprocess]\nheight = 32\nwidth = 32\n'
        'mean = [0.5, 0.5, 0.5]\nstd = [0.25, 0.25, 0.25]\n'
    )
    out = tmp_path / "model.onnx"
    args = ["export", "--module", f"{tmp_path / 'resnet.py'}:resnet", "--weights",
            str(tmp_path / "weights.safetensors"), "--spec", str(tmp_path / "spec.toml"),
            "--out", str(out), "--samples", "30"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "parity PASSED" in result.output
    provenance = Predictor(out).spec.provenance
    assert provenance["module"].endswith("resnet.py:resnet")
    assert len(provenance["weights_sha256"]) == 64

    scored = CliRunner().invoke(main, ["score", str(out), str(shapes), "--out",
                                       str(tmp_path / "p.csv")])
    assert scored.exit_code == 0, scored.output
    # A pickle checkpoint is refused without being opened: its payload would write a marker.
    marker = tmp_path / "pwned"
    (tmp_path / "weights.pt").write_bytes(pickle.dumps(_Payload(str(marker))))
    refused = CliRunner().invoke(main, [*args[:4], str(tmp_path / "weights.pt"), *args[5:7],
                                        "--out", str(tmp_path / "other.onnx")])
    assert refused.exit_code != 0 and "must be a .safetensors file" in refused.output
    assert not marker.exists() and not (tmp_path / "other.onnx").exists()


class _Payload:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_small_transformer_encoder_exports_with_parity(tmp_path: Path) -> None:
    data = write_chinese(tmp_path / "zh", per_class=12, seed=3)
    recipe = load_recipe("text-encoder", TINY_TEXT)
    texts = [p.read_text(encoding="utf-8") for p in sorted(data.rglob("*.txt"))]
    preprocess = recipe.data.preprocess(train_tokenizer(texts, recipe.data))
    classes = tuple(sorted(p.name for p in data.iterdir()))
    torch.manual_seed(0)
    model = TinyEncoder(preprocess.vocab_size, preprocess.max_length, len(classes),
                        preprocess.pad_id)
    example = torch.full((2, preprocess.max_length), preprocess.pad_id, dtype=torch.int64)
    example[:, :3] = 5
    result = toolkit.export_model(model, example, labels=classes, preprocess=preprocess,
                          out=tmp_path / "encoder.onnx", samples=data)
    # Every text as written and repeated past max_length: both padded and full inputs agree.
    assert result.report.passed and result.report.n_samples == 2 * 36
    predictor = Predictor(tmp_path / "encoder.onnx")
    ids = np.stack([predictor.decode(t) for t in texts[:6]])
    with torch.no_grad():
        expected = model(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(predictor.run(ids)[0], expected, atol=1e-4, rtol=1e-3)

    # The CLI's spec file names the tokenizer; pad_id and vocab_size come from it.
    (tmp_path / "tokenizer.json").write_text(preprocess.tokenizer, encoding="utf-8")
    (tmp_path / "spec.toml").write_text(
        f'modality = "text"\nlabels = {json.dumps(classes, ensure_ascii=False)}\n'
        f'samples = "zh"\n[preprocess]\ntokenizer = "tokenizer.json"\n'
        f"max_length = {preprocess.max_length}\n", encoding="utf-8")
    spec = load_export_spec(tmp_path / "spec.toml")
    assert spec.preprocess == preprocess and spec.samples == tmp_path / "zh"
    assert spec.example_input.shape == (2, preprocess.max_length)


def test_mistakes_are_named_before_export(
    resnet: tuple[nn.Module, tuple[str, ...]], shapes: Path, image_preprocess: ImagePreprocess,
    tmp_path: Path,
) -> None:
    model, classes = resnet
    common = dict(preprocess=image_preprocess, out=tmp_path / "m.onnx", samples=shapes)
    export = toolkit.export_model
    with pytest.raises(ValueError, match=r"example_input is torch.float32 \(3, 64, 64\)"):
        export(model, torch.zeros(1, 3, 64, 64), labels=classes, **common)
    with pytest.raises(ValueError, match="must return logits N×6"):
        export(model, torch.zeros(1, 3, 32, 32), labels=(*classes, "extra"), **common)
    with pytest.raises(DatasetError, match="not labels of the model"):
        export(model, torch.zeros(1, 3, 32, 32), labels=classes[:2], **common)
    assert not (tmp_path / "m.onnx").exists()
    (tmp_path / "spec.toml").write_text('modality = "image"\nlabels = ["a"]\nsamples = "x"\n'
                                        'colour = "red"\n[preprocess]\nheight = 8\nwidth = 8\n')
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        load_export_spec(tmp_path / "spec.toml")
    (tmp_path / "spec.toml").write_text('modality = "image"\nlabels = ["a"]\nsamples = "x"\n'
                                        '[preprocess]\nheight = 8\nwidht = 8\n')
    with pytest.raises(ValueError, match=r"unknown \[preprocess\] keys \['widht'\]"):
        load_export_spec(tmp_path / "spec.toml")


def test_variants_of_your_own_model(resnet: tuple[nn.Module, tuple[str, ...]], shapes: Path,
                                    image_preprocess: ImagePreprocess, tmp_path: Path) -> None:
    import onnx

    from toolkit.export.variants import Variant
    from toolkit_deploy.errors import ParityError

    model, classes = resnet
    common = dict(labels=classes, preprocess=image_preprocess, samples=shapes, n_samples=40)
    int8 = Variant(quantize="int8", max_accuracy_drop=100.0)  # the wiring, not the accuracy gate
    with pytest.raises(ValueError, match="INT8 needs calibration inputs"):
        toolkit.export_model(model, torch.zeros(1, 3, 32, 32), out=tmp_path / "a.onnx",
                             variant=int8, **common)
    out = tmp_path / "int8.onnx"
    try:
        result = toolkit.export_model(model, torch.zeros(1, 3, 32, 32), out=out, variant=int8,
                                      calibration=shapes, **common)
    except ParityError as e:  # the speed gate is a measurement on this machine
        assert "INT8 is not faster than FP32" in str(e) and not out.exists()
    else:
        assert result.variant.kind == "int8"
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type
                                                         for n in onnx.load(out).graph.node}
        assert Predictor(out).spec.provenance["variant"]["kind"] == "int8"

    # FP16 through the CLI: the spec, module and weights as for FP32.
    from safetensors.torch import save_file

    (tmp_path / "resnet.py").write_text(RESNET_SOURCE)
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    (tmp_path / "spec.toml").write_text(
        f'modality = "image"\nlabels = {json.dumps(classes)}\nsamples = "{shapes}"\n'
        f'calibration = "{shapes}"\n[preprocess]\nheight = 32\nwidth = 32\n')
    fp16 = tmp_path / "fp16.onnx"
    result = CliRunner().invoke(main, [
        "export", "--module", f"{tmp_path / 'resnet.py'}:resnet", "--weights",
        str(tmp_path / "weights.safetensors"), "--spec", str(tmp_path / "spec.toml"),
        "--out", str(fp16), "--samples", "20", "--fp16"])
    assert result.exit_code == 0, result.output
    assert "FP16" in result.output and "not validated" in result.output
    assert onnx.load(fp16).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
