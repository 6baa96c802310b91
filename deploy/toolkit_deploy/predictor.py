"""`Predictor`: one toolkit ONNX model, ready to classify files, bytes, images or arrays."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from toolkit_deploy import names
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DecodeError, ModelFormatError, ModelOutputError, ends_run
from toolkit_deploy.pipeline import predict_arrays
from toolkit_deploy.session import create_session, resolve_device
from toolkit_deploy.spec import ModelSpec

_ORT_DTYPES = {"tensor(uint8)": "uint8", "tensor(float)": "float32", "tensor(int64)": "int64"}


class Predictor:
    """Load a toolkit model file and classify inputs with ONNX Runtime.

    The session is created once, on exactly the requested device (`DeviceError` otherwise), and
    its inputs and outputs are checked against the metadata the file carries.

    Args:
        model: Path to the `.onnx` file written by `toolkit export`.
        device: `cpu`, `cuda`, or `auto` (CUDA when onnxruntime has it).
        threads: ONNX Runtime intra-op threads; default: the cores available to this process.
        **decoder_options: Options of the modality's decoder that are not part of the model,
            e.g. `encoding="gb18030"` for the text files of a text model.

    Example:
        >>> p = Predictor("model.onnx")
        >>> p.predict(["cat.png", "dog.jpg"])
        ['cat', 'dog']
    """

    def __init__(
        self,
        model: str | os.PathLike,
        device: str = "cpu",
        threads: int | None = None,
        **decoder_options: Any,
    ) -> None:
        self.path = Path(model)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"Model file {self.path} does not exist; expected an .onnx file written by "
                "`toolkit export`."
            )
        self.device = resolve_device(device)
        self.session = create_session(self.path, self.device, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = ModelSpec.from_metadata(meta, source=str(self.path))
        self._check_graph()
        self.decoder = create_decoder(self.spec.modality, self.spec.preprocess, **decoder_options)

    @property
    def labels(self) -> tuple[str, ...]:
        """Class names in output order."""
        return self.spec.labels

    @property
    def modality(self) -> str:
        return self.spec.modality

    @property
    def providers(self) -> list[str]:
        """Execution providers the session really uses."""
        return self.session.get_providers()

    def _check_graph(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        expected = self.spec.input_spec
        if set(inputs) != {names.INPUT}:
            raise ModelFormatError(
                f"{self.path} has graph inputs {sorted(inputs)}; expected exactly "
                f"[{names.INPUT!r}]."
            )
        got = inputs[names.INPUT]
        dtype = _ORT_DTYPES.get(got.type, got.type)
        if dtype != expected["dtype"] or list(got.shape[1:]) != expected["shape"][1:]:
            raise ModelFormatError(
                f"{self.path}: graph input is {dtype} {got.shape}, but its metadata says "
                f"{expected['dtype']} {expected['shape']}. The file was altered after export."
            )
        missing = [n for n in names.OUTPUTS if n not in outputs]
        if missing:
            raise ModelFormatError(f"{self.path} lacks graph outputs {missing}.")
        width = outputs[names.PROBABILITIES].shape[-1]
        if isinstance(width, int) and width != len(self.labels):
            raise ModelFormatError(
                f"{self.path} outputs {width} classes but its metadata lists "
                f"{len(self.labels)} labels."
            )

    def decode(self, source: Any) -> np.ndarray:
        """Decode one input into the model's per-sample array.

        Raises:
            DecodeError: The input cannot be decoded, whatever the decoder library raised on it
                (a malformed EXIF block makes Pillow raise SyntaxError; a hostile tokenizer
                regex makes tokenizers panic); the library's exception is its cause.
            TypeError, ValueError: The input is not of a kind the decoder takes.
        """
        try:
            return self.decoder(source)
        except (DecodeError, TypeError, ValueError):
            raise
        except BaseException as e:  # a Rust panic (tokenizers) derives from BaseException
            if ends_run(e):
                raise
            raise DecodeError(f"Cannot decode the input: {type(e).__name__}: {e}") from e

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run a decoded batch; returns (logits, probabilities), each N × classes.

        Raises:
            ValueError: The batch's shape or dtype is not what the model takes.
        """
        expected = self.spec.input_spec
        want = tuple(expected["shape"][1:])
        if not isinstance(batch, np.ndarray) or batch.ndim != len(want) + 1:
            got = batch.shape if isinstance(batch, np.ndarray) else type(batch).__name__
            raise ValueError(
                f"Batch has shape {got}, but {self.path.name} expects "
                f"(N, {', '.join(map(str, want))})."
            )
        if batch.shape[1:] != want or batch.dtype != np.dtype(expected["dtype"]):
            raise ValueError(
                f"Batch is {batch.dtype} {batch.shape}, but {self.path.name} expects "
                f"{expected['dtype']} (N, {', '.join(map(str, want))})."
            )
        if len(batch) == 0:
            n = len(self.labels)
            return np.zeros((0, n), np.float32), np.zeros((0, n), np.float32)
        if self.modality == "text":
            # ONNX Runtime's Gather refuses ids past the table but takes negative ones from its
            # end: both would be a traceback or a silently wrong answer.
            vocab = self.spec.preprocess.vocab_size
            bad = (batch < 0) | (batch >= vocab)
            if bad.any():
                rows = np.flatnonzero(bad.any(axis=1))
                raise ValueError(
                    f"Token ids must be in [0, {vocab}) (the tokenizer's vocabulary). Got "
                    f"{batch[bad][:5].tolist()} in {len(rows)} of {len(batch)} rows (first at "
                    f"row {rows[0]}). Pass texts to let the model's tokenizer make the ids.")
        logits, probs = self.session.run(list(names.OUTPUTS), {names.INPUT: batch})
        return logits, probs

    def predict_proba(self, inputs: Any, batch_size: int = names.BATCH_SIZE) -> np.ndarray:
        """Class probabilities, N × classes.

        Args:
            inputs: One input or a sequence of them: for images paths, encoded bytes, PIL images
                or arrays; for texts `str` texts, `pathlib.Path` files or bytes; for audio
                paths, encoded bytes or float waveforms at the model's rate. An array with the
                graph input's rank is taken as an already decoded batch.
            batch_size: Samples per ONNX Runtime call (an int >= 1).

        Raises:
            ValueError: `batch_size` is not an int >= 1; a decoded batch of the wrong shape or
                dtype, or of token ids outside the vocabulary.
            DecodeError: An input cannot be decoded.
            ModelOutputError: The model's output is NaN or infinite for some inputs (`run`
                returns the raw outputs; `score` makes such inputs error rows).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1. Got {batch_size!r}.")
        if self._is_batch(inputs):
            return self._finite(self.run(inputs)[1])
        items = _as_list(inputs)
        chunks = [
            predict_arrays(self, [self.decode(x) for x in items[i : i + batch_size]], batch_size)
            for i in range(0, len(items), batch_size)
        ]
        probs = np.concatenate(chunks) if chunks else np.zeros((0, len(self.labels)), np.float32)
        return self._finite(probs)

    def _is_batch(self, inputs: Any) -> bool:
        """Whether `inputs` is an already decoded batch (an array of the graph input's rank).

        For audio, a 2-D array is a batch only when its rows are windows of the model's length:
        a (48000, 2) stereo clip is one waveform (samples × channels) for the decoder to mix,
        not 48000 inputs of 2 samples.
        """
        if not isinstance(inputs, np.ndarray) or inputs.ndim != len(self.spec.input_spec["shape"]):
            return False
        if self.modality == "audio":
            return inputs.shape[1:] == tuple(self.spec.input_spec["shape"][1:])
        return True

    def _finite(self, probs: np.ndarray) -> np.ndarray:
        """`probs`, or a `ModelOutputError` naming the inputs whose output is NaN or Inf."""
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            raise ModelOutputError(
                f"{self.path.name} output NaN or Inf for {len(bad)} of {len(probs)} inputs (at "
                f"positions {bad[:20].tolist()}), so they have no prediction. Score them with "
                "toolkit_deploy.score.score (or `toolkit score`), which makes such inputs error "
                "rows and scores the others."
            )
        return probs

    @property
    def multilabel(self) -> bool:
        """Whether the model gives each input a label set (`spec.thresholds` decide it)."""
        return self.spec.multilabel

    @property
    def thresholds(self) -> tuple[float, ...]:
        """A multi-label model's per-label decision thresholds (empty for single-label)."""
        return self.spec.thresholds

    def predict(self, inputs: Any,
                batch_size: int = names.BATCH_SIZE) -> list[str] | list[tuple[str, ...]]:
        """The most probable label of each input (a list, also for a single input); for a
        multi-label model, each input's label set: the labels whose probability reaches their
        threshold (`spec.thresholds`), in label order, possibly none."""
        probs = self.predict_proba(inputs, batch_size)
        if self.multilabel:
            from toolkit_deploy.labelsets import decide

            keep = decide(probs, self.spec.thresholds)
            return [tuple(label for label, k in zip(self.labels, row, strict=True) if k)
                    for row in keep]
        return [self.labels[i] for i in probs.argmax(axis=1)]

    def __repr__(self) -> str:
        return (
            f"Predictor({str(self.path)!r}, modality={self.modality!r}, "
            f"labels={list(self.labels)}, providers={self.providers})"
        )


def as_predictor(model: Predictor | str | os.PathLike, device: str = "cpu",
                 threads: int | None = None, encoding: str | None = None) -> Predictor:
    """`model` itself when it is a `Predictor`, else the model file loaded (with the text
    `encoding` when one is given)."""
    if isinstance(model, Predictor):
        return model
    return Predictor(model, device, threads, **({"encoding": encoding} if encoding else {}))


def _as_list(inputs: Any) -> Sequence[Any]:
    # A memoryview is one encoded input (its iteration would give ints).
    single = (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image)
    if isinstance(inputs, single) or not isinstance(inputs, Iterable):
        return [inputs]
    return list(inputs)
