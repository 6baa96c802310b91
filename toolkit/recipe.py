"""Recipes: typed, strict training configuration loaded from TOML files.

A recipe has a name, a modality and four sections (`data`, `model`, `optim`, `train`), each a frozen
dataclass. Unknown keys and wrong types are errors that name the key, the expected type and the
valid keys. `--set section.key=value` overrides go through the same checks. The resolved recipe is
written next to every run, so a run can be rebuilt from its folder alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from toolkit_deploy.decoders.text import check_encoding
from toolkit_deploy.spec import (
    RESIZE_MODES,
    SAMPLINGS,
    AudioPreprocess,
    ImagePreprocess,
    TextPreprocess,
    VideoPreprocess,
)

FLIPS = ("none", "horizontal", "both")
CLASS_WEIGHTS = ("none", "balanced")
CACHES = ("auto", "ram", "none")
#: Validation figure → +1 when higher is better, -1 when lower is.
MONITORS = {"val_accuracy": 1, "val_loss": -1}
PRECISIONS = ("fp32", "bf16", "fp16")
MERGE_VALS = ("auto", "always", "never")
#: `train.task`: one label per file (softmax), or a set of labels per file (one sigmoid each).
TASKS = ("multiclass", "multilabel")
#: `train.threshold` modes besides a number (see `toolkit_deploy.labelsets.tune_thresholds`).
THRESHOLDS = ("per_label", "global")
#: `train.merge_val = "auto"` trains on the validation files too when a class of the training
#: split has fewer files than this.
MERGE_VAL_BELOW_PER_CLASS = 100
#: The value of keys that `toolkit.training.auto` sets from the data when a run starts.
AUTO = "auto"
TOKENIZERS = ("bpe", "unigram", "wordpiece", "word", "char")
NORMALIZATIONS = ("nfkc", "nfc", "none")


@dataclass(frozen=True)
class ImageData:
    """Data section of image recipes.

    Attributes:
        image_size: Side of the square model input, in pixels, or `auto`: the median shorter
            side of the training images, rounded to a multiple of 8, within [16, 64].
        channels: 3 (RGB), 1 (grayscale), or `auto`: 1 when every training image is stored
            as grayscale, else 3.
        resize: How files are brought to size: crop, stretch or pad.
        mean: Per-channel mean (after scaling to [0, 1]), applied inside the model.
        std: Per-channel standard deviation, applied inside the model.
        max_pixels: Larger decoded images are refused.
        val_fraction: Share of each class held out for validation when the data has no val/.
        test_fraction: Share of each class held out for the final test when the data has no
            train/ split.
        workers: DataLoader worker processes (0 decodes in the training process).
        flip: Training augmentation: none, horizontal, or both (horizontal and vertical) random
            flips. Use `none` when a flip changes the class (digits, text).
        crop_scale: Training augmentation: random resized crop keeping at least this share of
            the image area (aspect ratio 3/4 to 4/3), resized back; 1.0 turns it off.
        color_jitter: Training augmentation: random brightness, contrast and saturation factors
            in [1 - j, 1 + j]; 0.0 turns it off.
        cache: Keep decoded samples in memory: ram, none (decode every epoch), or auto (ram
            when a split's decoded samples fit in 2 GiB).
    """

    image_size: int | str = AUTO
    channels: int | str = AUTO
    resize: str = ImagePreprocess.resize
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    max_pixels: int = ImagePreprocess.max_pixels
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 0
    flip: str = "horizontal"
    crop_scale: float = 1.0
    color_jitter: float = 0.0
    cache: str = "auto"

    def __post_init__(self) -> None:
        _check(self.flip in FLIPS, "data.flip", f"one of {FLIPS}", self.flip)
        _check(0 < self.crop_scale <= 1, "data.crop_scale", "a float in (0, 1]", self.crop_scale)
        _check(0 <= self.color_jitter < 1, "data.color_jitter", "a float in [0, 1)",
               self.color_jitter)
        _check(self.image_size == AUTO or 8 <= self.image_size <= MAX_IMAGE_SIZE,
               "data.image_size", f"an int in [8, {MAX_IMAGE_SIZE}] or \"{AUTO}\"",
               self.image_size)
        _check(self.channels in (1, 3, AUTO), "data.channels", f"1, 3 or \"{AUTO}\"",
               self.channels)
        _check(self.resize in RESIZE_MODES, "data.resize", f"one of {RESIZE_MODES}", self.resize)
        _check_loading(self)
        for name in ("mean", "std"):
            values = getattr(self, name)
            _check(len(values) == 1 or self.channels in (AUTO, len(values)), f"data.{name}",
                   "one value (for every channel) or one per channel", list(values))
        if AUTO not in (self.image_size, self.channels):
            self.preprocess()  # caps, finite mean/std

    @property
    def decoder_options(self) -> dict[str, Any]:
        """Options of the runtime's image decoder (none)."""
        return {}

    def preprocess(self) -> ImagePreprocess:
        """The runtime's preprocessing spec for this data section (its `auto` keys resolved).

        A single mean or std value applies to every channel."""
        if AUTO in (self.image_size, self.channels):
            raise ValueError("data.image_size and data.channels are chosen from the training "
                             "images when a run starts (toolkit.training.auto); this data "
                             "section still says \"auto\".")
        try:
            return ImagePreprocess(
                height=self.image_size, width=self.image_size, channels=self.channels,
                resize=self.resize, mean=_per_channel(self.mean, self.channels),
                std=_per_channel(self.std, self.channels), max_pixels=self.max_pixels,
            )
        except ValueError as e:
            raise ValueError(f"Invalid data section: {e}") from e


@dataclass(frozen=True)
class TextData:
    """Data section of text recipes.

    Attributes:
        max_length: Tokens per text (the model input's fixed length); longer texts keep their
            first `max_length` tokens.
        tokenizer: Subword model trained per run on the training split: bpe, unigram, wordpiece,
            word (whole words), or char (one piece per character, spaces included; with the
            bag's n-grams, character n-grams, which need no word boundaries in any script).
        vocab_size: Largest vocabulary the tokenizer may learn (special tokens included).
        min_frequency: Pieces seen fewer times in the training split are not learnt (bpe,
            wordpiece, word).
        normalization: Unicode normalisation before anything else: nfkc (full-width → ASCII,
            ligatures split, ...), nfc, or none.
        lowercase: Lower-case the text.
        split_cjk: Make every CJK ideograph its own piece before the subword model (character
            level for Chinese, which is written without spaces); the models' n-grams and
            attention then build words from characters.
        text_column: Column (or JSON key) of the text in a .csv/.jsonl table.
        label_column: Column (or JSON key) of the label in a .csv/.jsonl table.
        encoding: Encoding of the text files; utf-8 also accepts a BOM. Other bytes are an error.
        max_bytes: Larger text files are refused.
        val_fraction: Share of each class held out for validation when the data has no val/.
        test_fraction: Share of each class held out for the final test when the data has no
            train/ split.
        workers: DataLoader worker processes (0 decodes in the training process).
        cache: Keep tokenised samples in memory: ram, none, or auto (ram when they fit in 2 GiB).
        token_dropout: Training augmentation: share of tokens replaced by the unknown token.
    """

    max_length: int = 128
    tokenizer: str = "bpe"
    vocab_size: int = 8000
    min_frequency: int = 2
    normalization: str = "nfkc"
    lowercase: bool = True
    split_cjk: bool = True
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"
    max_bytes: int = TextPreprocess.max_bytes
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 0
    cache: str = "auto"
    token_dropout: float = 0.0

    def __post_init__(self) -> None:
        _check(0 <= self.token_dropout < 1, "data.token_dropout", "a float in [0, 1)",
               self.token_dropout)
        _check(self.max_length >= 4, "data.max_length", "an int >= 4", self.max_length)
        _check(self.tokenizer in TOKENIZERS, "data.tokenizer", f"one of {TOKENIZERS}",
               self.tokenizer)
        _check(self.vocab_size >= 16, "data.vocab_size", "an int >= 16", self.vocab_size)
        _check(self.min_frequency >= 1, "data.min_frequency", "an int >= 1", self.min_frequency)
        _check(self.normalization in NORMALIZATIONS, "data.normalization",
               f"one of {NORMALIZATIONS}", self.normalization)
        _check(self.max_bytes >= 1, "data.max_bytes", "an int >= 1", self.max_bytes)
        _check_loading(self)
        try:
            check_encoding(self.encoding)
        except ValueError:
            _check(False, "data.encoding", "a Python codec name (utf-8, gb18030, latin-1, …)",
                   self.encoding)

    @property
    def decoder_options(self) -> dict[str, Any]:
        """Options of the runtime's text decoder (UTF-8 → its default, which accepts a BOM)."""
        utf8 = self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
        return {} if utf8 else {"encoding": self.encoding}

    def preprocess(self, tokenizer: str) -> TextPreprocess:
        """The runtime's preprocessing spec, given the run's trained tokenizer (JSON)."""
        return TextPreprocess(tokenizer=tokenizer, max_length=self.max_length,
                              max_bytes=self.max_bytes, **tokenizer_ids(tokenizer))


@dataclass(frozen=True)
class AudioData:
    """Data section of audio recipes.

    Attributes:
        sample_rate: Every clip is resampled to this rate (soxr) and mixed to mono.
        window: Seconds per model input; shorter clips are padded with silence. Training and
            validation use the first window of a longer clip; scoring averages all of them.
        hop: Seconds between windows of a clip longer than `window` when scoring.
        n_fft: FFT size of the log-mel spectrogram (computed inside the model).
        hop_length: Samples between spectrogram frames.
        n_mels: Mel bands.
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz (at most sample_rate / 2).
        max_seconds: Longer files are refused.
        val_fraction: Share of each class held out for validation when the data has no val/.
        test_fraction: Share of each class held out for the final test when the data has no
            train/ split.
        workers: DataLoader worker processes (0 decodes in the training process).
        cache: Keep decoded waveforms in memory: ram, none, or auto (ram when they fit in 2 GiB).
        noise: Training augmentation: add white noise at a random signal-to-noise ratio down to
            this many dB (0 turns it off; 10 is strong, 30 mild).
        gain_db: Training augmentation: random gain in [-gain_db, +gain_db] dB (0: off).
        time_shift: Training augmentation: shift each clip by up to this many seconds, either
            way, filling with silence (0: off).
    """

    sample_rate: int = AudioPreprocess.sample_rate
    window: float = AudioPreprocess.window
    hop: float = AudioPreprocess.hop
    n_fft: int = AudioPreprocess.n_fft
    hop_length: int = AudioPreprocess.hop_length
    n_mels: int = AudioPreprocess.n_mels
    f_min: float = 20.0  # the recipe's own (the runtime's default is 0 Hz)
    f_max: float = AudioPreprocess.f_max
    max_seconds: float = AudioPreprocess.max_seconds
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 0
    cache: str = "auto"
    noise: float = 0.0
    gain_db: float = 0.0
    time_shift: float = 0.0

    def __post_init__(self) -> None:
        _check_loading(self)
        _check(self.noise >= 0, "data.noise", "a float >= 0 (dB; 0 turns it off)", self.noise)
        _check(self.gain_db >= 0, "data.gain_db", "a float >= 0", self.gain_db)
        _check(0 <= self.time_shift < self.window, "data.time_shift",
               f"a float in [0, data.window = {self.window})", self.time_shift)
        self.preprocess()  # rates, sizes and frequencies

    @property
    def decoder_options(self) -> dict[str, Any]:
        """Options of the runtime's audio decoder (none)."""
        return {}

    def preprocess(self) -> AudioPreprocess:
        """The runtime's preprocessing spec for this data section."""
        try:
            return AudioPreprocess(**{f.name: getattr(self, f.name)
                                      for f in dataclasses.fields(AudioPreprocess)})
        except ValueError as e:
            raise ValueError(f"Invalid data section: {e}") from e


@dataclass(frozen=True)
class VideoData:
    """Data section of video recipes.

    Attributes:
        frames: Frames per clip given to the model (T).
        image_size: Side of the square frames, in pixels.
        resize: How frames are brought to size: crop, stretch or pad (the image code).
        mean: Per-channel mean (after scaling to [0, 1]), applied inside the model.
        std: Per-channel standard deviation, applied inside the model.
        sampling: uniform (frames spread evenly over the clip) or fps (`fps` frames per second
            from the start; a shorter clip repeats its last frame).
        fps: Frames per second for fps sampling.
        max_seconds: Longer videos are refused.
        max_pixels: Videos with larger frames are refused.
        max_frames: Videos with more frames are refused.
        val_fraction: Share of each class held out for validation when the data has no val/.
        test_fraction: Share of each class held out for the final test when the data has no
            train/ split.
        workers: DataLoader worker processes (0 decodes in the training process).
        cache: Keep decoded clips in memory: ram, none, or auto (ram when they fit in 2 GiB).
        flip: Training augmentation: none or horizontal (the whole clip, left-right, with
            probability 1/2).
    """

    frames: int = VideoPreprocess.frames
    image_size: int = 48
    resize: str = VideoPreprocess.resize
    mean: tuple[float, ...] = VideoPreprocess.mean
    std: tuple[float, ...] = VideoPreprocess.std
    sampling: str = VideoPreprocess.sampling
    fps: float = VideoPreprocess.fps
    max_seconds: float = VideoPreprocess.max_seconds
    max_pixels: int = VideoPreprocess.max_pixels
    max_frames: int = VideoPreprocess.max_frames
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 0
    cache: str = "auto"
    flip: str = "horizontal"

    def __post_init__(self) -> None:
        _check_loading(self)
        _check(self.frames >= 1, "data.frames", "an int >= 1", self.frames)
        _check(8 <= self.image_size <= MAX_IMAGE_SIZE, "data.image_size",
               f"an int in [8, {MAX_IMAGE_SIZE}]", self.image_size)
        _check(self.resize in RESIZE_MODES, "data.resize", f"one of {RESIZE_MODES}", self.resize)
        _check(self.sampling in SAMPLINGS, "data.sampling", f"one of {SAMPLINGS}", self.sampling)
        _check(self.flip in ("none", "horizontal"), "data.flip", "one of ('none', 'horizontal')",
               self.flip)
        self.preprocess()  # mean/std lengths, caps

    @property
    def decoder_options(self) -> dict[str, Any]:
        """Options of the runtime's video decoder (none)."""
        return {}

    def preprocess(self) -> VideoPreprocess:
        """The runtime's preprocessing spec for this data section."""
        try:
            return VideoPreprocess(
                frames=self.frames, height=self.image_size, width=self.image_size,
                resize=self.resize, mean=self.mean, std=self.std, sampling=self.sampling,
                fps=self.fps, max_seconds=self.max_seconds, max_pixels=self.max_pixels,
                max_frames=self.max_frames,
            )
        except ValueError as e:
            raise ValueError(f"Invalid data section: {e}") from e


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    return values * channels if len(values) == 1 else values


def tokenizer_ids(tokenizer: str) -> dict[str, int]:
    """`pad_id` (of the tokenizer's padding, else 0) and `vocab_size` (largest id + 1, added
    tokens included) of a tokenizers JSON document."""
    document = json.loads(tokenizer)
    vocab = document["model"]["vocab"]
    ids = list(vocab.values()) if isinstance(vocab, dict) else list(range(len(vocab)))
    ids += [t["id"] for t in document.get("added_tokens", [])]
    padding = document.get("padding") or {}
    return {"pad_id": int(padding.get("pad_id", 0)), "vocab_size": max(ids) + 1}


#: Data section type for each modality.
DATA_TYPES: dict[str, type] = {
    "image": ImageData, "text": TextData, "audio": AudioData, "video": VideoData}


@dataclass(frozen=True)
class ModelConfig:
    """Model section keys every modality has.

    Attributes:
        family: Registered model family (e.g. `cnn`).
        activation: Activation function of hidden layers (relu, gelu, silu, tanh, sigmoid,
            leaky_relu).
        hidden: Widths of the fully connected hidden layers before the output layer.
        dropout: Dropout before each fully connected layer.
    """

    family: str = ""
    activation: str = "relu"
    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        _check(bool(self.family), "model.family", "a registered family name", self.family)
        _check(0 <= self.dropout < 1, "model.dropout", "a float in [0, 1)", self.dropout)
        _check_widths(self.hidden, "model.hidden")


@dataclass(frozen=True)
class ConvModel(ModelConfig):
    """Model section of convolutional recipes (images; audio, on log-mel spectrograms; video, on
    frames and frame differences stacked as channels): the common keys, and

    Attributes:
        channels: Widths of the convolutional stages (one stage halves the resolution).
        pool: Global pooling after the convolutional stages: max, avg or avgmax (both,
            concatenated). Max pooling finds a small object anywhere in the image (or a short
            sound anywhere in the clip).
    """

    family: str = "cnn"
    channels: tuple[int, ...] = (16, 32, 64, 96)
    pool: str = "max"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_widths(self.channels, "model.channels")


@dataclass(frozen=True)
class TextModel(ModelConfig):
    """Model section of text recipes: the common keys, and

    Attributes:
        embed_dim: Width of the token (and n-gram) embeddings.
        ngrams: `bag`: also embed hashed n-grams of up to this many consecutive tokens (1: tokens
            only), as fastText does.
        buckets: `bag`: hash buckets shared by all n-grams longer than one token.
        layers: `transformer`: encoder layers.
        heads: `transformer`: attention heads (must divide embed_dim).
    """

    family: str = "bag"
    embed_dim: int = 64
    ngrams: int = 2
    buckets: int = 20000
    layers: int = 2
    heads: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(1 <= self.embed_dim <= MAX_WIDTH, "model.embed_dim", f"an int in [1, {MAX_WIDTH}]",
               self.embed_dim)
        _check(1 <= self.ngrams <= 6, "model.ngrams", "an int in [1, 6]", self.ngrams)
        _check(1 <= self.buckets <= MAX_BUCKETS, "model.buckets", f"an int in [1, {MAX_BUCKETS}]",
               self.buckets)
        _check(1 <= self.layers <= MAX_LAYERS, "model.layers", f"an int in [1, {MAX_LAYERS}]",
               self.layers)
        _check(self.heads >= 1 and self.embed_dim % self.heads == 0, "model.heads",
               f"an int >= 1 that divides model.embed_dim ({self.embed_dim})", self.heads)


#: Model section type for each modality.
MODEL_TYPES: dict[str, type] = {
    "image": ConvModel, "text": TextModel, "audio": ConvModel, "video": ConvModel}


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer section.

    Attributes:
        name: sgd, momentum, nesterov, adam or adamw.
        lr: Peak learning rate.
        weight_decay: L2 penalty (decoupled for adamw).
        momentum: Momentum coefficient of momentum and nesterov.
        betas: Adam's and AdamW's (beta1, beta2).
        schedule: constant, step or cosine.
        warmup_epochs: Epochs of linear warm-up before the schedule.
        clip_grad_norm: Clip the global gradient norm to this value; 0 turns it off.
        decay_bias_and_norm: Also apply weight decay to biases and normalisation layers.
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, ...] = (0.9, 0.999)
    schedule: str = "cosine"
    warmup_epochs: int = 0
    clip_grad_norm: float = 0.0
    decay_bias_and_norm: bool = False

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", "a float > 0", self.lr)
        _check(self.weight_decay >= 0, "optim.weight_decay", "a float >= 0", self.weight_decay)
        _check(0 <= self.momentum < 1, "optim.momentum", "a float in [0, 1)", self.momentum)
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "optim.betas",
               "two floats in [0, 1)", list(self.betas))
        _check(self.warmup_epochs >= 0, "optim.warmup_epochs", "an int >= 0", self.warmup_epochs)
        _check(self.clip_grad_norm >= 0, "optim.clip_grad_norm", "a float >= 0",
               self.clip_grad_norm)


@dataclass(frozen=True)
class TrainConfig:
    """Train section.

    Attributes:
        epochs: Passes over the training split, or `auto`: as many as it takes to make `steps`
            optimizer steps (a budget that does not depend on the data's size).
        steps: Optimizer steps of an `auto` run (rounded up to whole epochs).
        batch_size: Samples per optimizer step (over all processes under torchrun).
        loss: cross_entropy, mse or l1 (the last two between softmax probabilities and one-hot
            targets).
        label_smoothing: Share of the target mass spread evenly over all classes.
        class_weights: none, or balanced (each class weighted by n / (classes × its count) in
            the training split), for imbalanced data.
        seed: Seed of the split, initialisation, shuffling, augmentation and dropout.
        monitor: Validation figure that picks the best epoch and drives early stopping:
            val_accuracy (higher is better) or val_loss (lower is better).
        patience: Stop after this many epochs without improvement of `monitor`; 0 never stops;
            `auto`: a quarter of the epochs (at least 5).
        merge_val: Train on the validation files too (one run over train + val for the step
            budget, keeping the last weights; no validation figures, no early stopping):
            `always`, `never`, or `auto` (when a class of the training split has fewer than
            `MERGE_VAL_BELOW_PER_CLASS` files: there every file counts, and a validation split
            of a few files per class picks epochs by noise). Needs a test split.
        precision: fp32, or bf16 / fp16 autocast (mixed precision; fp16 needs CUDA).
        task: multiclass (one label per file: softmax) or multilabel (a set of labels per file,
            from a table: one sigmoid per label, binary cross-entropy; `cross_entropy` is then
            BCE with logits, mse / l1 compare sigmoid probabilities with the 0/1 targets,
            `class_weights = "balanced"` weighs each label's positives by negatives/positives,
            and `val_accuracy` is the exact-match ratio at threshold 0.5).
        threshold: Multi-label decision thresholds, chosen on the validation split after
            training: per_label (each label's maximises its F1), global (one for every label,
            maximising micro F1), or a number in (0, 1) used as is.
    """

    epochs: int | str = AUTO
    steps: int = 1000
    batch_size: int = 64
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    class_weights: str = "none"
    seed: int = 0
    monitor: str = "val_accuracy"
    patience: int | str = AUTO
    merge_val: str = AUTO
    precision: str = "fp32"
    task: str = "multiclass"
    threshold: float | str = "per_label"

    def __post_init__(self) -> None:
        _check(self.task in TASKS, "train.task", f"one of {TASKS}", self.task)
        _check(self.threshold in THRESHOLDS if isinstance(self.threshold, str)
               else 0 < self.threshold < 1, "train.threshold",
               f"one of {THRESHOLDS} or a float in (0, 1)", self.threshold)
        _check(self.epochs == AUTO or self.epochs >= 1, "train.epochs",
               f"an int >= 1 or \"{AUTO}\"", self.epochs)
        _check(self.steps >= 1, "train.steps", "an int >= 1", self.steps)
        _check(self.merge_val in MERGE_VALS, "train.merge_val", f"one of {MERGE_VALS}",
               self.merge_val)
        _check(self.batch_size >= 1, "train.batch_size", "an int >= 1", self.batch_size)
        _check(0 <= self.label_smoothing < 1, "train.label_smoothing", "a float in [0, 1)",
               self.label_smoothing)
        _check(self.class_weights in CLASS_WEIGHTS, "train.class_weights",
               f"one of {CLASS_WEIGHTS}", self.class_weights)
        _check(self.monitor in MONITORS, "train.monitor", f"one of {tuple(MONITORS)}",
               self.monitor)
        _check(self.patience == AUTO or self.patience >= 0, "train.patience",
               f"an int >= 0 or \"{AUTO}\"", self.patience)
        _check(self.precision in PRECISIONS, "train.precision", f"one of {PRECISIONS}",
               self.precision)


@dataclass(frozen=True)
class Recipe:
    """A complete, validated training recipe."""

    name: str
    modality: str
    description: str
    data: Any
    model: Any
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """The recipe as TOML that `load_recipe` reads back to an equal recipe."""
        top = ("name", "modality", "description")
        lines = [f"{k} = {_toml_value(getattr(self, k))}" for k in top]
        for section in SECTIONS:
            lines += ["", f"[{section}]"]
            value = getattr(self, section)
            lines += [f"{f.name} = {_toml_value(getattr(value, f.name))}"
                      for f in dataclasses.fields(value)]
        return "\n".join(lines) + "\n"


SECTIONS = ("data", "model", "optim", "train")
_SECTION_TYPES = {"optim": OptimConfig, "train": TrainConfig}


def _check_loading(data: Any) -> None:
    """The data keys every modality has: split fractions, workers, cache."""
    _check(data.cache in CACHES, "data.cache", f"one of {CACHES}", data.cache)
    _check(data.workers >= 0, "data.workers", "an int >= 0", data.workers)
    for name in ("val_fraction", "test_fraction"):
        value = getattr(data, name)
        _check(0 <= value < 1, f"data.{name}", "a float in [0, 1)", value)
    _check(data.val_fraction + data.test_fraction < 1, "data.val_fraction + data.test_fraction",
           "< 1", data.val_fraction + data.test_fraction)


#: Upper bounds on sizes, far above any useful value, so that a typo (hidden = [4000000000],
#: image_size = 100000) is a clear error rather than an allocation of terabytes.
MAX_IMAGE_SIZE = 4096  # an input of 4096 × 4096 × 3 is 50 MB per sample
MAX_WIDTH = 65_536  # one hidden, convolutional or embedding width
MAX_LAYERS = 64  # entries of model.hidden / model.channels, encoder layers
MAX_BUCKETS = 1 << 24


def _check_widths(widths: tuple[int, ...], key: str) -> None:
    _check(len(widths) <= MAX_LAYERS and all(1 <= w <= MAX_WIDTH for w in widths), key,
           f"at most {MAX_LAYERS} widths, each in [1, {MAX_WIDTH}]",
           list(widths) if len(widths) <= 10 else f"{len(widths)} widths")


def _check(ok: bool, key: str, expected: str, got: Any) -> None:
    if not ok:
        raise ValueError(f"The recipe key '{key}' must be {expected}. Got {got!r} instead.")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"Cannot write {type(value).__name__} to TOML.")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check `value` against a field's type; ints are accepted for floats, lists for tuples."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        if not isinstance(value, (list, tuple)):
            raise TypeError(
                f"The recipe key '{key}' must be a list of {item.__name__}. Got {value!r} instead."
            )
        return tuple(_coerce(v, item, key) for v in value)
    if origin in (typing.Union, types.UnionType):
        if set(typing.get_args(annotation)) == {float, str}:
            # `float | str` fields hold a number or one of their named modes (checked after).
            if isinstance(value, str):
                return value
            return _coerce(value, float, key)
        if set(typing.get_args(annotation)) != {int, str}:
            raise TypeError(f"Unsupported recipe field type for '{key}'.")
        # `int | str` fields hold a number or "auto" (chosen from the data when training starts).
        if value == AUTO or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"The recipe key '{key}' must be an int or \"{AUTO}\". Got {value!r} "
                        f"({type(value).__name__}) instead.")
    if annotation is float and isinstance(value, float) and not math.isfinite(value):
        # inf and nan pass every range check below them (nan compares false) and then train
        # NaN weights, overflow sizes (inf seconds × rate) or disable a safety cap.
        raise ValueError(f"The recipe key '{key}' must be a finite float. Got {value!r} instead.")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, annotation) or (annotation is not bool and isinstance(value, bool)):
        raise TypeError(
            f"The recipe key '{key}' must be {annotation.__name__}. Got {value!r} "
            f"({type(value).__name__}) instead."
        )
    return value


def _build(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in valid]
    if unknown:
        raise ValueError(
            f"Unknown recipe key(s) {', '.join(f'{section}.{k}' for k in unknown)}. "
            f"Valid keys of [{section}]: {', '.join(valid)}."
        )
    kwargs = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def parse_recipe(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Validate a recipe given as nested dicts (as parsed from TOML)."""
    top = {"name", "modality", "description", *SECTIONS}
    unknown = sorted(set(data) - top)
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {unknown}; valid: {sorted(top)}.")
    for key in ("name", "modality"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"{source}: '{key}' must be a string. Got {data.get(key)!r}.")
    modality = data["modality"]
    if modality not in DATA_TYPES:
        raise ValueError(
            f"{source}: unknown modality {modality!r}; valid modalities: {sorted(DATA_TYPES)}."
        )
    for section in SECTIONS:
        if not isinstance(data.get(section, {}), dict):
            raise ValueError(f"{source}: [{section}] must be a table of keys.")
    return Recipe(
        name=data["name"],
        modality=modality,
        description=str(data.get("description", "")),
        data=_build(DATA_TYPES[modality], data.get("data", {}), "data"),
        model=_build(MODEL_TYPES[modality], data.get("model", {}), "model"),
        **{s: _build(t, data.get(s, {}), s) for s, t in _SECTION_TYPES.items()},
    )


def builtin_recipes() -> dict[str, Path]:
    """Name → file of the recipes shipped with toolkit."""
    folder = resources.files("toolkit.recipes")
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def load_recipe(name_or_path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load a built-in recipe by name or a recipe file by path, then apply overrides.

    Args:
        name_or_path: `image-cnn` or `path/to/recipe.toml`.
        overrides: {'section.key': value}; values are checked like file values.

    Raises:
        ValueError: Unknown recipe name, unknown key, or invalid value.
        TypeError: A value has the wrong type.
    """
    builtin = builtin_recipes()
    path = Path(name_or_path)
    if str(name_or_path) in builtin:
        path = builtin[str(name_or_path)]
    elif not path.is_file():
        raise ValueError(
            f"Unknown recipe {str(name_or_path)!r}: not a built-in name nor a file. "
            f"Built-in recipes: {', '.join(sorted(builtin))}."
        )
    try:
        data = read_toml(path.read_text(encoding="utf-8"), f"Recipe file {path}")
    except UnicodeDecodeError as e:
        raise ValueError(f"Recipe file {path} is not UTF-8 text (byte {e.start}: "
                         f"{e.object[e.start:e.start + 4]!r}); TOML files are UTF-8. Save it "
                         "as UTF-8.") from e
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            raise ValueError(
                f"Override '{dotted}' must be section.key with section one of "
                f"{', '.join(SECTIONS)}."
            )
        data.setdefault(section, {})[key] = value
    return parse_recipe(data, source=str(path))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse `section.key=value`; the value is read as TOML (`0.1`, `[32, 64]`, `true`), or as a
    plain string when it is not TOML (`sgd`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects section.key=value (e.g. optim.lr=0.01). Got {text!r}.")
    try:
        value = read_toml(f"v = {raw.strip()}", f"--set {key.strip()}")["v"]
    except ValueError as e:
        if isinstance(e.__cause__, RecursionError):
            raise
        value = raw.strip()
    return key.strip(), value


def read_toml(text: str, what: str) -> dict[str, Any]:
    """`text` parsed as TOML; ValueError naming `what` when it is not valid TOML or is nested
    too deeply for the parser (tomllib recurses once per array level: 100,000 levels exhaust
    the stack)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{what} is not valid TOML: {e}") from e
    except RecursionError as e:
        raise ValueError(f"{what} nests arrays or tables too deeply to read; a recipe needs "
                         "at most a few levels.") from e
