"""The model-file contract: what a toolkit ONNX file says about itself, as typed dataclasses.

`ModelSpec.to_metadata()` gives the `metadata_props` the exporter writes;
`ModelSpec.from_metadata()` validates what the runtime reads back and fails with
`ModelFormatError` naming the missing piece.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import typing
from collections.abc import Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from toolkit_deploy import names
from toolkit_deploy.errors import ModelFormatError

RESIZE_MODES = ("crop", "stretch", "pad")
#: The largest `max_pixels` a spec may allow (16384 × 16384): one such RGB image is 0.8 GB, and
#: a file claiming more would let any decompression bomb through.
MAX_PIXELS_CAP = 16384 * 16384


def _finite(value: Any) -> bool:
    """Whether `value` is a real, finite number (not a bool, inf or nan)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


#: The one resize algorithm the image decoder implements, by part (docs/model-metadata.v3
#: .schema.json defines each name precisely, so that a client in another language can reproduce
#: the arrays):
#: - filter `pillow-bilinear`: Pillow's `Image.resize(size, Resampling.BILINEAR)` (no
#:   reducing_gap): a separable triangle filter whose support widens with the downscale factor
#:   (antialiased), pixel centres aligned.
#: - rounding `round-half-even`: the scaled size is Python's round() of side × scale (crop: at
#:   least the target side; pad: at least 1), with scale = max (crop) or min (pad) of the target
#:   over the source sides.
#: - crop `centre-floor`: the window starts at ((scaled_w - W) // 2, (scaled_h - H) // 2).
#: - pad `centre-floor-black`: the image is pasted on black at ((W - w) // 2, (H - h) // 2).
RESIZE_ALGORITHM = {"filter": "pillow-bilinear", "rounding": "round-half-even",
                    "crop": "centre-floor", "pad": "centre-floor-black"}


@dataclass(frozen=True)
class ResizeAlgorithm:
    """How `ImagePreprocess.resize` is carried out, named part by part (see RESIZE_ALGORITHM).

    Only the algorithm this runtime implements is accepted: a file naming another would be
    decoded differently from how it was trained, so it is refused.
    """

    filter: str = RESIZE_ALGORITHM["filter"]
    rounding: str = RESIZE_ALGORITHM["rounding"]
    crop: str = RESIZE_ALGORITHM["crop"]
    pad: str = RESIZE_ALGORITHM["pad"]

    def __post_init__(self) -> None:
        for name, implemented in RESIZE_ALGORITHM.items():
            if getattr(self, name) != implemented:
                raise ValueError(
                    f"resize_algorithm.{name} is {getattr(self, name)!r:.100}, but this runtime "
                    f"resizes with {implemented!r} only; upgrade toolkit-deploy to read this "
                    "model.")


def _check_algorithm(value: Any, owner: str) -> None:
    if not isinstance(value, ResizeAlgorithm):
        raise ValueError(f"{owner}.resize_algorithm must be a ResizeAlgorithm (or left out: the "
                         f"runtime's one). Got {type(value).__name__}.")


@dataclass(frozen=True)
class ImagePreprocess:
    """How a file becomes the uint8 H×W×C array an image model takes.

    Decoding and resizing happen in the runtime decoder; `mean`/`std` scaling happens inside the
    ONNX graph and is recorded here so that readers of the file know what the graph does.

    Attributes:
        height: Height of the model input in pixels.
        width: Width of the model input in pixels.
        channels: 3 (RGB) or 1 (grayscale).
        resize: `crop` (shorter side to size, centre crop), `stretch` (ignore aspect ratio) or
            `pad` (longer side to size, pad with black).
        mean: Per-channel mean subtracted after scaling pixels to [0, 1] (in the graph).
        std: Per-channel standard deviation divided by after subtracting the mean (in the graph).
        max_pixels: Decoded images with more pixels than this are refused (decompression bombs).
        resize_algorithm: The filter, rounding, crop and pad rules of `resize` (format 2; a
            format-1 file was resized the same way).
    """

    height: int
    width: int
    channels: int = 3
    resize: str = "crop"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    max_pixels: int = 64_000_000
    resize_algorithm: ResizeAlgorithm = ResizeAlgorithm()

    def __post_init__(self) -> None:
        for name in ("height", "width", "max_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ImagePreprocess.{name} must be an int > 0. Got {value!r}.")
        _check_algorithm(self.resize_algorithm, "ImagePreprocess")
        if self.max_pixels > MAX_PIXELS_CAP:
            raise ValueError(f"ImagePreprocess.max_pixels must be at most {MAX_PIXELS_CAP} "
                             f"(16384 × 16384). Got {self.max_pixels}.")
        if self.height * self.width > self.max_pixels:
            # The model input itself must pass the decompression-bomb cap: a 100000 × 100000
            # input would otherwise be allocated (30 GB) for every image decoded.
            raise ValueError(
                f"ImagePreprocess.height × width ({self.height} × {self.width} = "
                f"{self.height * self.width} pixels) must be at most max_pixels "
                f"({self.max_pixels}).")
        if self.channels not in (1, 3):
            raise ValueError(f"ImagePreprocess.channels must be 1 or 3. Got {self.channels!r}.")
        if self.resize not in RESIZE_MODES:
            raise ValueError(
                f"ImagePreprocess.resize must be one of {RESIZE_MODES}. Got {self.resize!r}."
            )
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != self.channels:
                raise ValueError(
                    f"ImagePreprocess.{name} needs one value per channel ({self.channels}). "
                    f"Got {list(value)}."
                )
        if not all(_finite(v) for v in (*self.mean, *self.std)):
            raise ValueError(f"ImagePreprocess.mean and std must be finite numbers. Got "
                             f"{list(self.mean)} and {list(self.std)}.")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"ImagePreprocess.std values must be > 0. Got {list(self.std)}.")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one decoded sample (without the batch axis)."""
        return (self.height, self.width, self.channels)

    @property
    def input_dtype(self) -> str:
        return "uint8"


@dataclass(frozen=True)
class TextPreprocess:
    """How a text becomes the int64 token ids a text model takes.

    The tokenizer (a `tokenizers` JSON document, trained per run on its training split) carries its
    own normalisation (e.g. NFKC, lowercasing, CJK ideographs split into characters), truncation
    to `max_length` tokens and padding with `pad_id`, so the ids are fully determined by this spec.

    The graph input has a fixed length, `max_length`, rather than a dynamic one: every decoded
    sample then has the same shape, so one batching, caching and pipeline code serves every
    modality, and a batch of N texts costs the same whatever their lengths. Models mask the
    padding, so it never changes a prediction.

    Attributes:
        tokenizer: The tokenizer, as the JSON string of `tokenizers.Tokenizer.to_str()`.
        max_length: Tokens per text; longer texts are truncated (their first tokens are kept),
            shorter ones padded.
        pad_id: Id of the padding token (models ignore it).
        vocab_size: Number of token ids the tokenizer can produce.
        max_bytes: Text files larger than this are refused.
    """

    tokenizer: str
    max_length: int
    pad_id: int
    vocab_size: int
    max_bytes: int = 10_000_000

    def __post_init__(self) -> None:
        for name in ("max_length", "vocab_size", "max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TextPreprocess.{name} must be an int > 0. Got {value!r}.")
        if not isinstance(self.pad_id, int) or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(
                f"TextPreprocess.pad_id must be an int in [0, {self.vocab_size}). "
                f"Got {self.pad_id!r}."
            )
        if not isinstance(self.tokenizer, str) or not self.tokenizer.startswith("{"):
            raise ValueError("TextPreprocess.tokenizer must be a tokenizers JSON document.")
        # One canonical text for the document: the file stores it as a JSON object (format 2),
        # so the spec read back must equal the spec written whatever the writer's whitespace.
        object.__setattr__(self, "tokenizer", canonical_json(_tokenizer_object(self.tokenizer)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.max_length,)

    @property
    def input_dtype(self) -> str:
        return "int64"

    def summary(self) -> dict[str, Any]:
        """The spec with the tokenizer summarised (its model type and sha256), for people."""
        import hashlib

        try:
            document = json.loads(self.tokenizer)
        except ValueError as e:
            raise ModelFormatError(f"TextPreprocess.tokenizer is not valid JSON: {e}.") from e
        model = document.get("model") if isinstance(document, dict) else None
        return {
            **{k: v for k, v in asdict(self).items() if k != "tokenizer"},
            "tokenizer": {
                "model": model.get("type") if isinstance(model, dict) else None,
                "normalizer": document.get("normalizer") if isinstance(document, dict) else None,
                "sha256": hashlib.sha256(self.tokenizer.encode()).hexdigest(),
            },
        }


@dataclass(frozen=True)
class AudioPreprocess:
    """How a sound file becomes the float32 waveform windows an audio model takes.

    The runtime decoder reads the file (any rate, channel count and sample format), mixes it to
    mono, resamples it to `sample_rate`, pads a clip shorter than the window with silence and cuts
    a longer one into windows `hop` seconds apart; the model's probabilities over a clip's windows
    are averaged. The log-mel spectrogram is computed inside the ONNX graph from these parameters,
    which are recorded here so that readers of the file know what the graph does.

    Attributes:
        sample_rate: Samples per second of the model input.
        window: Seconds of sound per model input (the graph input has
            `round(window * sample_rate)` samples).
        hop: Seconds between the starts of consecutive windows of a long clip.
        n_fft: FFT size of the spectrogram (Hann window of the same length).
        hop_length: Samples between spectrogram frames.
        n_mels: Mel bands.
        f_min: Lowest frequency of the mel filter bank, in Hz.
        f_max: Highest frequency of the mel filter bank, in Hz (at most sample_rate / 2).
        max_seconds: Longer files are refused.
    """

    sample_rate: int = 16000
    window: float = 1.0
    hop: float = 0.5
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"AudioPreprocess.{name} must be an int > 0. Got {value!r}.")
        for name in ("window", "hop", "max_seconds"):
            if not (_finite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"AudioPreprocess.{name} must be a finite number > 0 "
                                 f"(seconds). Got {getattr(self, name)!r}.")
        if not _finite(self.window * self.sample_rate):
            raise ValueError(f"AudioPreprocess.window × sample_rate must be a finite number of "
                             f"samples. Got {self.window!r} × {self.sample_rate!r}.")
        if self.window > self.max_seconds:
            raise ValueError(f"AudioPreprocess.window ({self.window:g} s) must be at most "
                             f"max_seconds ({self.max_seconds:g} s), the longest clip accepted.")
        if self.samples < self.n_fft:
            raise ValueError(f"AudioPreprocess.window ({self.samples} samples) must be at least "
                             f"n_fft ({self.n_fft}).")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"AudioPreprocess needs 0 <= f_min < f_max <= sample_rate / 2 "
                             f"({self.sample_rate / 2:g}). Got f_min={self.f_min}, "
                             f"f_max={self.f_max}.")

    @property
    def samples(self) -> int:
        """Samples per window."""
        return round(self.window * self.sample_rate)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.samples,)

    @property
    def input_dtype(self) -> str:
        return "float32"


SAMPLINGS = ("uniform", "fps")


@dataclass(frozen=True)
class VideoPreprocess:
    """How a video file becomes the uint8 T×H×W×C frames a video model takes.

    The runtime decoder (PyAV) picks `frames` frames (spread evenly over the clip, or `fps` per
    second from its start) and brings each to size with the image decoder's code; scaling and
    mean/std normalisation happen inside the ONNX graph.

    Attributes:
        frames: Frames per clip (T).
        height: Frame height in pixels.
        width: Frame width in pixels.
        channels: 3 (RGB).
        resize: `crop`, `stretch` or `pad`, as for images.
        mean: Per-channel mean after scaling pixels to [0, 1] (in the graph).
        std: Per-channel standard deviation (in the graph).
        sampling: `uniform` (frames spread evenly over the whole clip) or `fps` (`fps` frames per
            second from the start; a shorter clip repeats its last frame).
        fps: Frames per second for `fps` sampling.
        max_seconds: Longer videos are refused.
        max_pixels: Videos with larger frames are refused.
        max_frames: Videos with more frames than this are refused (checked while decoding).
        resize_algorithm: How frames are resized, as for images.
    """

    frames: int = 8
    height: int = 64
    width: int = 64
    channels: int = 3
    resize: str = "crop"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    sampling: str = "uniform"
    fps: float = 4.0
    max_seconds: float = 600.0
    max_pixels: int = 8_300_000
    max_frames: int = 36_000
    resize_algorithm: ResizeAlgorithm = ResizeAlgorithm()

    def __post_init__(self) -> None:
        for name in ("frames", "max_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"VideoPreprocess.{name} must be an int > 0. Got {value!r}.")
        if self.channels != 3:
            raise ValueError(f"VideoPreprocess.channels must be 3. Got {self.channels!r}.")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"VideoPreprocess.sampling must be one of {SAMPLINGS}. Got "
                             f"{self.sampling!r}.")
        if not all(_finite(v) and v > 0 for v in (self.fps, self.max_seconds)):
            raise ValueError(f"VideoPreprocess.fps and max_seconds must be finite numbers > 0. "
                             f"Got {self.fps!r} and {self.max_seconds!r}.")
        self.frame_spec()  # sizes, resize mode, mean/std

    def frame_spec(self) -> ImagePreprocess:
        """The image spec each frame is brought to (the image decoder's code does it)."""
        return ImagePreprocess(height=self.height, width=self.width, channels=self.channels,
                               resize=self.resize, mean=self.mean, std=self.std,
                               max_pixels=self.max_pixels,
                               resize_algorithm=self.resize_algorithm)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.frames, self.height, self.width, self.channels)

    @property
    def input_dtype(self) -> str:
        return "uint8"


def canonical_json(value: Any) -> str:
    """`value` as compact JSON text (standard JSON only: NaN and infinities are refused)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _tokenizer_object(document: str) -> dict[str, Any]:
    """The tokenizer's JSON document parsed, or ValueError."""
    try:
        value = json.loads(document)
    except RecursionError as e:
        raise ValueError("TextPreprocess.tokenizer is nested too deeply to read.") from e
    except ValueError as e:
        raise ValueError(f"TextPreprocess.tokenizer is not valid JSON: {e}.") from e
    if not isinstance(value, dict):
        raise ValueError("TextPreprocess.tokenizer must be a JSON object (a tokenizers "
                         "document).")
    return value


#: Preprocessing spec type for each modality; later modalities register theirs here.
PREPROCESS_TYPES: dict[str, type] = {
    "image": ImagePreprocess, "text": TextPreprocess, "audio": AudioPreprocess,
    "video": VideoPreprocess}


def _json_value(value: Any, annotation: Any, where: str) -> Any:
    """`value` (decoded JSON) checked against a dataclass field's type: ints are not bools,
    floats are finite numbers, tuples are JSON lists."""
    if dataclasses.is_dataclass(annotation):
        try:
            return annotation(**_json_fields(annotation, value, where))
        except (TypeError, ValueError) as e:
            if isinstance(e, ModelFormatError):
                raise
            raise ModelFormatError(f"{where}: {e}") from e
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if not isinstance(value, list):
            raise ModelFormatError(f"{where} must be a JSON list. Got {value!r:.100}.")
        return tuple(_json_value(v, item, where + " item") for v in value)
    if annotation is float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value))
        expected = "a finite number"
    elif annotation is int:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif annotation is bool:
        ok, expected = isinstance(value, bool), "true or false"
    else:
        ok, expected = isinstance(value, annotation), f"a {annotation.__name__}"
    if not ok:
        raise ModelFormatError(f"{where} must be {expected}. Got {value!r:.100} "
                               f"({type(value).__name__}).")
    return float(value) if annotation is float else value


def _json_fields(cls: type, data: Any, what: str) -> dict[str, Any]:
    """A JSON object as the keyword arguments of the dataclass `cls`; unknown or missing keys and
    values of the wrong type are `ModelFormatError`s naming the key."""
    if not isinstance(data, dict):
        raise ModelFormatError(f"{what} must be a JSON object. Got {type(data).__name__}.")
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise ModelFormatError(f"{what} has unknown keys {unknown}; valid keys: {sorted(valid)}.")
    required = [f.name for f in fields(cls)
                if f.default is MISSING and f.default_factory is MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        raise ModelFormatError(f"{what} lacks the keys {missing}.")
    hints = typing.get_type_hints(cls)
    return {k: _json_value(v, hints[k], f"{what}: key {k!r}") for k, v in data.items()}


def preprocess_from_dict(modality: str, data: dict[str, Any]) -> Any:
    """Build the preprocessing spec of `modality` from its JSON form.

    Raises:
        ModelFormatError: Unknown modality, unknown or missing keys, wrong types or values.
    """
    if modality not in PREPROCESS_TYPES:
        raise ModelFormatError(
            f"Unknown modality {modality!r}; this runtime knows {sorted(PREPROCESS_TYPES)}. "
            "Upgrade toolkit-deploy to read this model."
        )
    cls = PREPROCESS_TYPES[modality]
    kwargs = _json_fields(cls, data, "Preprocess spec")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as e:
        raise ModelFormatError(f"Invalid preprocess spec in model metadata: {e}") from e


@dataclass(frozen=True)
class ParityReport:
    """Agreement of an exported model with PyTorch, measured on real held-out samples.

    Attributes:
        passed: Whether every gate held.
        n_samples: Number of held-out samples compared.
        batch_sizes: ONNX Runtime batch sizes the samples were run at.
        max_abs_diff: Largest |logit_onnx - logit_torch| over samples, classes and batch sizes.
        max_rel_diff: Largest |Δlogit| / max(|logit_torch|, 1e-6).
        max_prob_diff: Largest |Δprobability|.
        top1_agreement: Fraction of samples whose argmax is the same in both.
        atol: Gate: allowed absolute logit difference (plus `rtol` × |logit|).
        rtol: Gate: allowed relative logit difference.
        min_agreement: Gate: smallest allowed top-1 agreement.
        failures: One sentence per failed gate.
        gated: Whether `atol`, `rtol` and `min_agreement` were gates. False for an INT8 file,
            whose logits move by design: its figures against PyTorch are reported, and its
            gates (held-out accuracy and speed against FP32) are in `provenance.variant`.
    """

    passed: bool
    n_samples: int
    batch_sizes: tuple[int, ...]
    max_abs_diff: float
    max_rel_diff: float
    max_prob_diff: float
    top1_agreement: float
    atol: float
    rtol: float
    min_agreement: float
    failures: tuple[str, ...] = ()
    gated: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        d["failures"] = list(self.failures)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        """The report from its JSON form (`batch_sizes` and `failures` may be left out).

        Raises:
            ModelFormatError: Unknown or missing keys, or values of the wrong type.
        """
        defaults = {"batch_sizes": [], "failures": []} if isinstance(data, dict) else {}
        return cls(**_json_fields(cls, {**defaults, **data} if defaults else data,
                                  "Parity report"))

    def summary(self, agreement_of: str = "top-1") -> str:
        """A few lines a person can read at the end of an export; `agreement_of` names what
        `top1_agreement` compares (`label-set` for a multi-label model)."""
        verdict = "PASSED" if self.passed else "FAILED"
        agreement, logits = (
            (f"(gate >= {self.min_agreement})", f"(gate <= {self.atol:g} + {self.rtol:g}·|logit|)")
            if self.gated else ("(not gated)", "(not gated: see the variant's gates)"))
        lines = [
            f"parity {verdict} on {self.n_samples} held-out samples "
            f"(ONNX Runtime batch sizes {', '.join(map(str, self.batch_sizes))})",
            f"  {agreement_of + ' agreement':<16} {self.top1_agreement:.4f}   {agreement}",
            f"  max |Δlogit|     {self.max_abs_diff:.3e}   {logits}",
            f"  max rel Δlogit   {self.max_rel_diff:.3e}",
            f"  max |Δprob|      {self.max_prob_diff:.3e}",
        ]
        lines += [f"  gate failed: {f}" for f in self.failures]
        return "\n".join(lines)


@dataclass(frozen=True)
class ModelSpec:
    """Everything a toolkit model file says about itself.

    Attributes:
        modality: `image`, `text`, `audio` or `video`.
        labels: Class names, in output order.
        preprocess: The modality's preprocessing spec (e.g. `ImagePreprocess`).
        opset: ONNX opset of the default domain.
        provenance: Recipe, versions and data fingerprint of the run that made the model.
        parity: The export's parity report.
        format_version: Version of this contract the file was read from; 0 (made in memory):
            the version `to_metadata` writes, 3 for a multi-label model, 2 otherwise.
        task: `multiclass` (softmax, one label per input) or `multilabel` (sigmoid per label,
            a label set per input).
        thresholds: Multi-label models: the decision threshold of each label (tuned on the
            run's validation split); a label is in the set when its probability >= it.
    """

    modality: str
    labels: tuple[str, ...]
    preprocess: Any
    opset: int
    provenance: dict[str, Any] = field(default_factory=dict)
    parity: ParityReport | None = None
    format_version: int = 0
    task: str = names.MULTICLASS
    thresholds: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.format_version:
            object.__setattr__(self, "format_version", names.FORMAT_VERSION
                               if self.task == names.MULTILABEL
                               else names.SINGLE_LABEL_FORMAT_VERSION)
        if self.task not in names.TASKS:
            raise ModelFormatError(f"task must be one of {names.TASKS}. Got {self.task!r}.")
        if self.task == names.MULTILABEL and (
                len(self.thresholds) != len(self.labels)
                or not all(_finite(t) and 0 <= t <= 1 for t in self.thresholds)):
            raise ModelFormatError(
                f"A multi-label model needs one threshold in [0, 1] per label "
                f"({len(self.labels)}). Got {list(self.thresholds)[:20]}.")

    @property
    def multilabel(self) -> bool:
        """Whether the model gives a label set (sigmoid outputs) rather than one label."""
        return self.task == names.MULTILABEL

    @property
    def input_spec(self) -> dict[str, Any]:
        """Name, dtype and shape of the graph input; `batch` is the dynamic axis."""
        shape = [names.BATCH_AXIS, *self.preprocess.input_shape]
        return {"name": names.INPUT, "dtype": self.preprocess.input_dtype, "shape": shape}

    def to_metadata(self) -> dict[str, str]:
        """The `metadata_props` of the model file, in the current format (`names.FORMAT_VERSION`
        for a multi-label model, `names.SINGLE_LABEL_FORMAT_VERSION` otherwise, whatever format
        the spec was read from): every value a string of JSON."""
        preprocess = asdict(self.preprocess)
        if isinstance(self.preprocess, TextPreprocess):  # an object, not JSON in a JSON string
            preprocess["tokenizer"] = json.loads(self.preprocess.tokenizer)
        return {
            names.META_FORMAT_VERSION: json.dumps(
                names.FORMAT_VERSION if self.multilabel else names.SINGLE_LABEL_FORMAT_VERSION),
            names.META_MODALITY: json.dumps(self.modality),
            names.META_LABELS: json.dumps(list(self.labels), ensure_ascii=False),
            names.META_PREPROCESS: json.dumps(preprocess, ensure_ascii=False),
            names.META_INPUT: json.dumps(self.input_spec),
            names.META_PROVENANCE: json.dumps(self.provenance, ensure_ascii=False),
            names.META_PARITY: json.dumps(self.parity.to_dict() if self.parity else None),
            names.META_OPSET: json.dumps(self.opset),
            **({names.META_TASK: json.dumps({
                "type": self.task, "thresholds": list(self.thresholds),
                "separator": names.LABEL_SEPARATOR})} if self.multilabel else {}),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> ModelSpec:
        """Read and validate the metadata of a model file.

        Raises:
            ModelFormatError: A key is missing or malformed, or the format is newer than this
                runtime.
        """
        # The version first: a newer format may have renamed or dropped the other keys.
        if names.META_FORMAT_VERSION in meta:
            _check_version(_meta_int(meta, names.META_FORMAT_VERSION, source), source)
        missing = [k for k in names.REQUIRED_META if k not in meta]
        if missing:
            raise ModelFormatError(
                f"{source} is not a toolkit model: its metadata lacks {missing}. "
                "Export models with `toolkit export RUN --out model.onnx`."
            )
        version = _meta_int(meta, names.META_FORMAT_VERSION, source)
        # Format 1 wrote the modality bare; format 2 writes it as a JSON string.
        modality = (meta[names.META_MODALITY] if version == 1
                    else _meta_json(meta, names.META_MODALITY, source))
        if not isinstance(modality, str):
            raise ModelFormatError(f"{source}: metadata '{names.META_MODALITY}' must be a "
                                   f"{'string' if version == 1 else 'JSON string'}. Got "
                                   f"{str(meta[names.META_MODALITY])[:200]!r}.")
        labels = _meta_json(meta, names.META_LABELS, source)
        if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
            raise ModelFormatError(
                f"{source}: metadata '{names.META_LABELS}' must be a non-empty JSON list of "
                f"strings. Got {meta[names.META_LABELS][:200]!r}."
            )
        if len(set(labels)) != len(labels):
            doubled = sorted({x for x in labels if labels.count(x) > 1})
            raise ModelFormatError(f"{source}: metadata '{names.META_LABELS}' names {doubled} "
                                   "more than once; each class needs its own label.")
        objects = {key: _meta_json(meta, key, source)
                   for key in (names.META_INPUT, names.META_PROVENANCE)}
        for key, value in objects.items():
            if not isinstance(value, dict):
                raise ModelFormatError(f"{source}: metadata '{key}' must be a JSON object. Got "
                                       f"{meta[key][:200]!r}.")
        preprocess = _meta_json(meta, names.META_PREPROCESS, source)
        parity = _meta_json(meta, names.META_PARITY, source)
        with _naming(names.META_PREPROCESS, source):
            preprocess = preprocess_from_dict(modality, _tokenizer_as_text(preprocess, modality,
                                                                            version))
        with _naming(names.META_PARITY, source):
            parity = ParityReport.from_dict(parity) if parity is not None else None
        task, thresholds = _task(meta, source)
        return cls(
            task=task,
            thresholds=thresholds,
            modality=modality,
            labels=tuple(labels),
            preprocess=preprocess,
            opset=_meta_int(meta, names.META_OPSET, source),
            provenance=objects[names.META_PROVENANCE],
            parity=parity,
            format_version=version,
        )


def _task(meta: dict[str, str], source: str) -> tuple[str, tuple[float, ...]]:
    """The task and thresholds of `names.META_TASK` (absent: a single-label model)."""
    if names.META_TASK not in meta:
        return names.MULTICLASS, ()
    value = _meta_json(meta, names.META_TASK, source)
    ok = (isinstance(value, dict) and value.get("type") in names.TASKS
          and isinstance(value.get("thresholds"), list)
          and all(isinstance(t, (int, float)) and not isinstance(t, bool)
                  for t in value["thresholds"]))
    if not ok:
        raise ModelFormatError(
            f"{source}: metadata '{names.META_TASK}' must be a JSON object with 'type' (one of "
            f"{list(names.TASKS)}) and 'thresholds' (a list of numbers, one per label). Got "
            f"{meta[names.META_TASK][:200]!r}.")
    return value["type"], tuple(float(t) for t in value["thresholds"])


def _tokenizer_as_text(preprocess: Any, modality: str, version: int) -> Any:
    """A text spec's tokenizer as the document `TextPreprocess` holds: format 2 stores it as a
    JSON object, format 1 as a JSON string."""
    if modality != "text" or not isinstance(preprocess, dict) or "tokenizer" not in preprocess:
        return preprocess
    tokenizer = preprocess["tokenizer"]
    if version == 1:
        return preprocess  # already a string; TextPreprocess checks it
    if not isinstance(tokenizer, dict):
        raise ModelFormatError(f"Preprocess spec: key 'tokenizer' must be a JSON object (the "
                               f"tokenizers document; format {version}). Got "
                               f"{type(tokenizer).__name__}.")
    try:
        return {**preprocess, "tokenizer": canonical_json(tokenizer)}
    except ValueError as e:  # NaN or infinities: not standard JSON
        raise ModelFormatError(f"Preprocess spec: key 'tokenizer' holds {e}.") from e


@contextlib.contextmanager
def _naming(key: str, source: str) -> Iterator[None]:
    """Prefix a `ModelFormatError` raised inside with the model and the metadata key."""
    try:
        yield
    except ModelFormatError as e:
        raise ModelFormatError(f"{source}: metadata '{key}' is invalid: {e}") from e


def _meta_json(meta: dict[str, str], key: str, source: str) -> Any:
    """The JSON value of metadata `key`."""
    try:
        return json.loads(meta[key])
    except RecursionError as e:
        raise ModelFormatError(f"{source}: metadata '{key}' is not valid JSON: nested too "
                               "deeply to read. The file was altered or damaged.") from e
    except (ValueError, TypeError) as e:
        raise ModelFormatError(f"{source}: metadata '{key}' is not valid JSON ({e}). Got "
                               f"{str(meta[key])[:200]!r}; the file was altered or damaged, "
                               "export it again.") from e


def _meta_int(meta: dict[str, str], key: str, source: str) -> int:
    """The integer value of metadata `key`."""
    value = meta[key]
    digits = value if isinstance(value, str) else ""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise ModelFormatError(f"{source}: metadata '{key}' must be a non-negative integer. "
                               f"Got {str(value)[:200]!r}.")
    return int(digits)


def _check_version(version: int, source: str) -> None:
    if version < names.OLDEST_FORMAT_VERSION:
        raise ModelFormatError(f"{source}: metadata '{names.META_FORMAT_VERSION}' must be >= "
                               f"{names.OLDEST_FORMAT_VERSION}. Got {version}.")
    if version > names.FORMAT_VERSION:
        from toolkit_deploy import __version__

        raise ModelFormatError(
            f"{source} uses model format {version} (metadata '{names.META_FORMAT_VERSION}'), "
            f"but this toolkit-deploy ({__version__}) reads formats up to "
            f"{names.FORMAT_VERSION}. Upgrade toolkit-deploy (pip install -U toolkit-deploy) to "
            "read this model."
        )
