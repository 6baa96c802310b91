"""Bring your own model: export any PyTorch classifier with the toolkit's metadata and gates.

`export_model(module, example_input, labels=…, preprocess=…, out=…, samples=…)` wraps the module
so that the graph takes what the runtime decoder gives (the file contract), proves parity on the
labelled `samples` through that decoder, and writes one self-describing file, exactly as
`toolkit export RUN` does for the toolkit's own runs. The CLI form reads the same arguments from
a spec file: `toolkit export --module file.py:factory --weights w.safetensors --spec spec.toml`.

What the module takes, per modality (the wrapper converts the decoder's arrays to it):
- image: float32 N×C×H×W, scaled to [0, 1] then normalised by the spec's mean/std (what timm and
  torchvision classifiers take);
- video: float32 N×C×T×H×W, scaled and normalised the same way (torchvision's video layout);
- text: int64 token ids N×max_length, padded with pad_id (the decoder's output as is);
- audio: float32 waveform windows N×samples (the decoder's output as is).
It returns logits N×len(labels), in the order of `labels`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from toolkit.export.graph import MIN_OPSET
from toolkit.export.onnx_export import ExportResult, check_destination, export_proven
from toolkit.export.parity import DEFAULT_GATES, Gates
from toolkit.export.samples import CALIBRATION_SAMPLES, batch_of, spread
from toolkit.export.target import export_opset
from toolkit.export.variants import Variant
from toolkit.models.cnn import ImageNormalize
from toolkit.training.data import Samples
from toolkit_deploy.decoders import create_decoder, decoder_extensions
from toolkit_deploy.evaluate import labelled_inputs
from toolkit_deploy.files import sha256_of
from toolkit_deploy.spec import PREPROCESS_TYPES, ModelSpec

#: Keys of an export spec file, besides the `[preprocess]` table.
SPEC_KEYS = ("name", "modality", "labels", "samples", "calibration", "preprocess")


class VideoNormalize(nn.Module):
    """uint8 N×T×H×W×C clips → float32 N×C×T×H×W, scaled to [0, 1] and normalised."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.frames = ImageNormalize(mean, std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[0], x.shape[1]
        frames = self.frames(x.flatten(0, 1))  # (N·T)×C×H×W
        return frames.reshape(n, t, *frames.shape[1:]).transpose(1, 2)


def with_decoder_input(module: nn.Module, preprocess: Any) -> nn.Module:
    """`module` behind the layers that turn the runtime decoder's arrays into its input."""
    if isinstance(preprocess, PREPROCESS_TYPES["image"]):
        return nn.Sequential(ImageNormalize(preprocess.mean, preprocess.std), module)
    if isinstance(preprocess, PREPROCESS_TYPES["video"]):
        return nn.Sequential(VideoNormalize(preprocess.mean, preprocess.std), module)
    return module


def modality_of(preprocess: Any) -> str:
    for modality, cls in PREPROCESS_TYPES.items():
        if isinstance(preprocess, cls):
            return modality
    kinds = ", ".join(cls.__name__ for cls in PREPROCESS_TYPES.values())
    raise TypeError(f"preprocess must be one of toolkit_deploy.spec's {kinds}. "
                    f"Got {type(preprocess).__name__}.")


def labelled_samples(samples: Any, modality: str, labels: tuple[str, ...], n: int) -> Samples:
    """Up to `n` labelled inputs spread evenly over `samples`: a labelled folder
    `DIR/<label>/<file>`, a labelled `.csv`/`.jsonl` table of texts, or (source, label) pairs."""
    if isinstance(samples, str | os.PathLike):
        sources, targets, _ = labelled_inputs(Path(samples), decoder_extensions(modality), labels)
        bad = [s for s in sources if isinstance(s, Exception)]
        if bad:
            raise ValueError(f"{samples}: {len(bad)} rows cannot be used, e.g. {bad[0]} Fix or "
                             "remove them.")
    else:
        pairs = list(samples)
        unknown = sorted({str(label) for _, label in pairs} - set(labels))
        if unknown:
            raise ValueError(f"Sample labels {unknown[:5]} are not among the labels "
                             f"{list(labels)}.")
        sources = [s for s, _ in pairs]
        targets = [labels.index(label) for _, label in pairs]
    if not sources:
        raise ValueError(f"No labelled samples in {samples}; parity needs real inputs.")
    picks = spread(len(sources), n)
    return Samples(tuple(sources[i] for i in picks), tuple(targets[i] for i in picks),
                   tuple(str(sources[i])[:80] for i in picks))


def _check_module(wrapped: nn.Module, module: nn.Module, example_input: Any, decoded: np.ndarray,
                  labels: tuple[str, ...]) -> None:
    """The module takes `example_input`, the wrapper gives it that kind of input from the
    decoder's arrays, and it returns one logit per label."""
    example = torch.as_tensor(example_input)
    with torch.no_grad():
        given = wrapped[0](torch.from_numpy(decoded)) if wrapped is not module \
            else torch.from_numpy(decoded)
        if tuple(given.shape[1:]) != tuple(example.shape[1:]) or given.dtype != example.dtype:
            raise ValueError(
                f"The preprocess spec gives the module {given.dtype} {tuple(given.shape[1:])} per "
                f"sample, but example_input is {example.dtype} {tuple(example.shape[1:])}. Make "
                "the spec's sizes match what the module takes (see toolkit.export.byo)."
            )
        logits = module(example)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[1] != len(labels):
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(
            f"The module must return logits N×{len(labels)} (one per label); it returned {got}."
        )


def export_model(
    module: nn.Module,
    example_input: Any,
    *,
    labels: list[str] | tuple[str, ...],
    preprocess: Any,
    out: str | os.PathLike,
    samples: Any,
    name: str | None = None,
    n_samples: int = 256,
    gates: Gates = DEFAULT_GATES,
    opset: int | None = None,
    target_ort: str | None = None,
    overwrite: bool = False,
    provenance: dict[str, Any] | None = None,
    export_options: dict[str, Any] | None = None,
    variant: Variant | None = None,
    calibration: Any = None,
) -> ExportResult:
    """Export any PyTorch classifier to one toolkit ONNX file, proven on labelled samples.

    Args:
        module: The classifier; its input is described in this module's docstring.
        example_input: One batch the module takes (checked against what `preprocess` gives).
        labels: Class names in the order of the module's outputs.
        preprocess: The runtime's preprocessing spec (`toolkit_deploy.spec.ImagePreprocess`,
            `TextPreprocess`, `AudioPreprocess` or `VideoPreprocess`); it also sets the modality.
        out: The `.onnx` file to write.
        samples: Real labelled inputs to prove parity on: a labelled folder `DIR/<label>/<file>`,
            a labelled table of texts, or (source, label) pairs.
        name: What the model is (the file's doc string).
        n_samples: Samples compared (at most).
        gates: The parity gates.
        opset: The ai.onnx opset to write (default 18; lower ones by conversion).
        target_ort: The oldest ONNX Runtime release the file must load on (e.g. `1.16`).
        overwrite: Replace an existing `out`.
        provenance: Extra provenance recorded in the file (e.g. where the weights came from).
        export_options: More `torch.onnx.export` options, e.g. the `custom_translation_table`
            of a module with custom operators.
        variant: Write an INT8, FP16 or optimised variant (`toolkit.export.variants`) once the
            FP32 graph is proven.
        calibration: INT8 calibration inputs, labelled like `samples` (e.g. a training folder);
            they should not be the samples that gate the accuracy.

    Raises:
        ParityError: A gate failed; nothing is written at `out`.
    """
    out = check_destination(out, overwrite)
    labels = tuple(labels)
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError(f"labels must be distinct class names. Got {list(labels)}.")
    modality = modality_of(preprocess)
    held_out = labelled_samples(samples, modality, labels, n_samples)
    if variant is not None and variant.quantize and calibration is None:
        raise ValueError("INT8 needs calibration inputs: pass calibration= (the CLI: `calibration"
                         " = \"DIR\"` in the spec), e.g. a few hundred training samples in the "
                         "samples' layout, not the samples that gate the accuracy.")
    if variant is not None and variant.quantize:
        calibration = labelled_samples(calibration, modality, labels, CALIBRATION_SAMPLES)
    module = module.eval()
    wrapped = with_decoder_input(module, preprocess).eval()
    decoder = create_decoder(modality, preprocess)
    first = decoder(held_out.sources[0])
    _check_module(wrapped, module, example_input,
                  batch_of(decoder, [first]), labels)
    spec = ModelSpec(
        modality=modality, labels=labels, preprocess=preprocess,
        opset=export_opset(opset, target_ort, floor=MIN_OPSET),
        provenance={"source": "export_model", "module": type(module).__name__,
                    "samples": str(samples) if isinstance(samples, str | os.PathLike) else
                    f"{len(held_out)} given samples", **(provenance or {})},
    )
    return export_proven(wrapped, spec, held_out, out, name=name or type(module).__name__,
                         decoder_options={}, gates=gates, export_options=export_options,
                         target=(opset, target_ort), variant=variant, calibration=calibration)


# --- the CLI form: a module factory, safetensors weights and a spec file -----------------------


@dataclass(frozen=True)
class ExportSpec:
    """What `toolkit export --module` needs besides the module, read from a TOML file.

    Attributes:
        name: What the model is.
        modality: image, text, audio or video.
        labels: Class names in the order of the module's outputs.
        samples: Labelled samples to prove parity on (a folder or a table of texts).
        preprocess: The runtime's preprocessing spec.
        calibration: Labelled inputs INT8 calibrates on, if given.
    """

    name: str
    modality: str
    labels: tuple[str, ...]
    samples: Path
    preprocess: Any
    calibration: Path | None = None

    @property
    def example_input(self) -> torch.Tensor:
        """A batch of two inputs of the kind the wrapped module takes (for `export_model`)."""
        p = self.preprocess
        if self.modality == "image":
            return torch.zeros(2, p.channels, p.height, p.width)
        if self.modality == "video":
            return torch.zeros(2, p.channels, p.frames, p.height, p.width)
        if self.modality == "text":
            return torch.full((2, p.max_length), p.pad_id, dtype=torch.int64)
        return torch.zeros(2, *p.input_shape)


def load_export_spec(path: str | os.PathLike) -> ExportSpec:
    """Read an export spec file (see the README's "Bring your own model"); paths in it are
    relative to the file.

    Raises:
        ValueError: A key is unknown, missing or of the wrong type (named in the message).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"Cannot read the export spec {path}: {e}") from e
    unknown = sorted(set(data) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; valid keys: {list(SPEC_KEYS)}.")
    required = (("modality", str), ("labels", list), ("samples", str), ("preprocess", dict))
    optional = (("calibration", str),)
    for key, kind in required + tuple(o for o in optional if o[0] in data):
        if not isinstance(data.get(key), kind):
            raise ValueError(f"{path}: `{key}` must be a {kind.__name__}. "
                             f"Got {data.get(key)!r}.")
    modality = data["modality"]
    if modality not in PREPROCESS_TYPES:
        raise ValueError(f"{path}: unknown modality {modality!r}; valid: "
                         f"{', '.join(PREPROCESS_TYPES)}.")
    preprocess = dict(data["preprocess"])
    if modality == "text":
        preprocess = _text_preprocess(preprocess, path.parent)
    cls = PREPROCESS_TYPES[modality]
    valid = sorted(f.name for f in fields(cls))
    bad = sorted(set(preprocess) - set(valid))
    if bad:
        raise ValueError(f"{path}: unknown [preprocess] keys {bad} for {modality}; valid keys: "
                         f"{valid}.")
    try:
        spec = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in preprocess.items()})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid [preprocess]: {e}") from e
    return ExportSpec(name=str(data.get("name", path.stem)), modality=modality,
                      labels=tuple(map(str, data["labels"])),
                      samples=path.parent / data["samples"], preprocess=spec,
                      calibration=path.parent / data["calibration"] if "calibration" in data
                      else None)


def _text_preprocess(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A text spec's `tokenizer` names a tokenizers JSON file; `vocab_size` and `pad_id` default
    to the tokenizer's own."""
    from toolkit.recipe import tokenizer_ids

    if not isinstance(values.get("tokenizer"), str):
        raise ValueError("A text spec needs [preprocess] tokenizer = \"tokenizer.json\" (a "
                         "tokenizers JSON file, relative to the spec).")
    path = folder / values["tokenizer"]
    try:
        tokenizer = path.read_text(encoding="utf-8")
        ids = tokenizer_ids(tokenizer)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"Cannot read the tokenizer {path} (a tokenizers JSON file): {e}") from e
    return {**ids, **values, "tokenizer": tokenizer}


def load_factory(reference: str) -> nn.Module:
    """Call `file.py:factory` (a function or class that takes no argument) and return its module.

    The file is run as Python, so only name a file you trust, as with any import.
    """
    file, _, attribute = reference.rpartition(":")
    if not file or not attribute:
        raise ValueError(f"--module must be FILE.py:FACTORY, e.g. models.py:resnet. "
                         f"Got {reference!r}.")
    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"--module file {path} does not exist.")
    spec = importlib.util.spec_from_file_location(f"toolkit_byo_{path.stem}", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(loaded)
    factory = getattr(loaded, attribute, None)
    if not callable(factory):
        names = sorted(n for n in vars(loaded) if callable(vars(loaded)[n]) and n[0] != "_")
        raise ValueError(f"{path} has no callable {attribute!r}; it has {names}.")
    module = factory()
    if not isinstance(module, nn.Module):
        raise TypeError(f"{reference}() must return a torch.nn.Module. Got "
                        f"{type(module).__name__}.")
    return module


def load_weights(module: nn.Module, path: str | os.PathLike) -> str:
    """Load a safetensors state dict into `module` (strictly); returns the file's sha256.

    Pickle-based checkpoints (.pt, .pth, .bin, .ckpt) are refused: loading one can run any code.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"--weights must be a .safetensors file. Got {path.name}: pickle checkpoints can run "
            "code when loaded, so the toolkit does not open them. Convert it where you trust it: "
            "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors')."
        )
    try:
        state = load_file(path)
    except (OSError, SafetensorError) as e:
        raise ValueError(f"Cannot read the weights {path}: {e}") from e
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes that differ
        raise ValueError(f"{path} does not fit the module: {e}") from e
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path} does not fit the module: missing {result.missing_keys[:5]}, unexpected "
            f"{result.unexpected_keys[:5]}. Is --module the architecture these weights are for?"
        )
    return sha256_of(path)


def export_module_file(reference: str, weights: str | os.PathLike, spec_path: str | os.PathLike,
                       out: str | os.PathLike, *, samples: str | os.PathLike | None = None,
                       **options: Any) -> ExportResult:
    """The CLI form of `export_model`: `--module FILE.py:FACTORY --weights W --spec SPEC`;
    `samples` overrides the spec's."""
    spec = load_export_spec(spec_path)
    check_destination(out, options.get("overwrite", False))
    module = load_factory(reference)
    digest = load_weights(module, weights)
    return export_model(
        module, spec.example_input, labels=spec.labels, preprocess=spec.preprocess, out=out,
        samples=Path(samples) if samples is not None else spec.samples, name=spec.name,
        calibration=spec.calibration,
        provenance={"module": reference, "weights": str(weights), "weights_sha256": digest},
        **options,
    )
