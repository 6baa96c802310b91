"""The model-file contract: what a toolkit ONNX file says about itself, as typed dataclasses.

`ModelSpec.to_metadata()` gives the `metadata_props` the exporter writes;
`ModelSpec.from_metadata()` validates what the runtime reads back and fails with
`ModelFormatError` naming the missing piece.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from toolkit_deploy import names
from toolkit_deploy.errors import ModelFormatError

RESIZE_MODES = ("crop", "stretch", "pad")


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
    """

    height: int
    width: int
    channels: int = 3
    resize: str = "crop"
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    max_pixels: int = 64_000_000

    def __post_init__(self) -> None:
        for name in ("height", "width", "max_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ImagePreprocess.{name} must be an int > 0. Got {value!r}.")
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

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.max_length,)

    @property
    def input_dtype(self) -> str:
        return "int64"

    def summary(self) -> dict[str, Any]:
        """The spec with the tokenizer summarised (its model type and sha256), for people."""
        import hashlib

        document = json.loads(self.tokenizer)
        return {
            **{k: v for k, v in asdict(self).items() if k != "tokenizer"},
            "tokenizer": {
                "model": document.get("model", {}).get("type"),
                "normalizer": document.get("normalizer"),
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
            if not getattr(self, name) > 0:
                raise ValueError(f"AudioPreprocess.{name} must be > 0 seconds. Got "
                                 f"{getattr(self, name)!r}.")
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
        if not (self.fps > 0 and self.max_seconds > 0):
            raise ValueError("VideoPreprocess.fps and max_seconds must be > 0.")
        self.frame_spec()  # sizes, resize mode, mean/std

    def frame_spec(self) -> ImagePreprocess:
        """The image spec each frame is brought to (the image decoder's code does it)."""
        return ImagePreprocess(height=self.height, width=self.width, channels=self.channels,
                               resize=self.resize, mean=self.mean, std=self.std,
                               max_pixels=self.max_pixels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.frames, self.height, self.width, self.channels)

    @property
    def input_dtype(self) -> str:
        return "uint8"


#: Preprocessing spec type for each modality; later modalities register theirs here.
PREPROCESS_TYPES: dict[str, type] = {
    "image": ImagePreprocess, "text": TextPreprocess, "audio": AudioPreprocess,
    "video": VideoPreprocess}


def preprocess_from_dict(modality: str, data: dict[str, Any]) -> Any:
    """Build the preprocessing spec of `modality` from its JSON form."""
    if modality not in PREPROCESS_TYPES:
        raise ModelFormatError(
            f"Unknown modality {modality!r}; this runtime knows {sorted(PREPROCESS_TYPES)}. "
            "Upgrade toolkit-deploy to read this model."
        )
    cls = PREPROCESS_TYPES[modality]
    valid = {f.name for f in fields(cls)}
    unknown = set(data) - valid
    if unknown:
        raise ModelFormatError(
            f"Preprocess spec has unknown keys {sorted(unknown)}; valid keys: {sorted(valid)}."
        )
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["batch_sizes"] = list(self.batch_sizes)
        d["failures"] = list(self.failures)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        kwargs = dict(data)
        kwargs["batch_sizes"] = tuple(kwargs.get("batch_sizes", ()))
        kwargs["failures"] = tuple(kwargs.get("failures", ()))
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ModelFormatError(f"Invalid parity report in model metadata: {e}") from e

    def summary(self) -> str:
        """A few lines a person can read at the end of an export."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"parity {verdict} on {self.n_samples} held-out samples "
            f"(ONNX Runtime batch sizes {', '.join(map(str, self.batch_sizes))})",
            f"  top-1 agreement  {self.top1_agreement:.4f}   (gate >= {self.min_agreement})",
            f"  max |Δlogit|     {self.max_abs_diff:.3e}   (gate <= {self.atol:g} + "
            f"{self.rtol:g}·|logit|)",
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
        format_version: Version of this contract.
    """

    modality: str
    labels: tuple[str, ...]
    preprocess: Any
    opset: int
    provenance: dict[str, Any] = field(default_factory=dict)
    parity: ParityReport | None = None
    format_version: int = names.FORMAT_VERSION

    @property
    def input_spec(self) -> dict[str, Any]:
        """Name, dtype and shape of the graph input; `batch` is the dynamic axis."""
        shape = [names.BATCH_AXIS, *self.preprocess.input_shape]
        return {"name": names.INPUT, "dtype": self.preprocess.input_dtype, "shape": shape}

    def to_metadata(self) -> dict[str, str]:
        """The `metadata_props` of the model file (every value a string)."""
        return {
            names.META_FORMAT_VERSION: str(self.format_version),
            names.META_MODALITY: self.modality,
            names.META_LABELS: json.dumps(list(self.labels), ensure_ascii=False),
            names.META_PREPROCESS: json.dumps(asdict(self.preprocess), ensure_ascii=False),
            names.META_INPUT: json.dumps(self.input_spec),
            names.META_PROVENANCE: json.dumps(self.provenance, ensure_ascii=False),
            names.META_PARITY: json.dumps(self.parity.to_dict() if self.parity else None),
            names.META_OPSET: str(self.opset),
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> ModelSpec:
        """Read and validate the metadata of a model file.

        Raises:
            ModelFormatError: A key is missing or malformed, or the format is newer than this
                runtime.
        """
        missing = [k for k in names.REQUIRED_META if k not in meta]
        if missing:
            raise ModelFormatError(
                f"{source} is not a toolkit model: its metadata lacks {missing}. "
                "Export models with `toolkit export RUN --out model.onnx`."
            )
        try:
            version = int(meta[names.META_FORMAT_VERSION])
            modality = meta[names.META_MODALITY]
            labels = json.loads(meta[names.META_LABELS])
            preprocess = json.loads(meta[names.META_PREPROCESS])
            provenance = json.loads(meta[names.META_PROVENANCE])
            parity = json.loads(meta[names.META_PARITY])
            opset = int(meta[names.META_OPSET])
        except (ValueError, TypeError) as e:
            raise ModelFormatError(f"{source} has malformed toolkit metadata: {e}") from e
        if version > names.FORMAT_VERSION:
            raise ModelFormatError(
                f"{source} uses model format {version}, but this runtime reads up to "
                f"{names.FORMAT_VERSION}. Upgrade toolkit-deploy."
            )
        if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
            raise ModelFormatError(
                f"{source}: metadata '{names.META_LABELS}' must be a non-empty JSON list of "
                f"strings. Got {meta[names.META_LABELS][:200]!r}."
            )
        return cls(
            modality=modality,
            labels=tuple(labels),
            preprocess=preprocess_from_dict(modality, preprocess),
            opset=opset,
            provenance=provenance,
            parity=ParityReport.from_dict(parity) if parity is not None else None,
            format_version=version,
        )
