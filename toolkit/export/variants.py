"""Export variants of a proven FP32 graph: INT8, FP16 and ONNX Runtime's optimised graph.

The FP32 graph is proven against PyTorch first (`export_proven`); a variant is built from it and
proven in turn, on the same held-out samples through the same runtime decoder, before anything is
written:

- `optimize`: ONNX Runtime's offline-optimised graph at the *basic* level (constant folding,
  redundant nodes removed, fusions into standard operators). The extended and layout levels write
  ORT-only contrib operators (`com.microsoft`) and CPU-specific blocked layouts (NCHWc), so the
  file would load on ONNX Runtime only, on a like CPU only. Gated like FP32.
- `int8`: ONNX Runtime's quantization (`toolkit.export.int8`: static QDQ for convolutional
  networks, dynamic for the others; preprocessing and logits stay float). Gated on held-out
  accuracy (the drop from FP32, in points) and on speed (faster than FP32 at the scoring batch
  size, measured here with the runtime's own session settings); logits are compared, not gated.
- `fp16`: float16 weights and arithmetic, inputs and outputs kept in their types, preprocessing
  and the final softmax kept float32. Gated against PyTorch with looser tolerances
  (`FP16_TOLERANCE`). On a machine without CUDA this runs on ONNX Runtime's CPU provider, which
  inserts casts around the operators it has no float16 kernel for and computes those in float32:
  what is validated then is float16 weights and the rounding of activations where the file casts,
  not CUDA's float16 arithmetic. The file says so (provenance `variant.not_validated`).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toolkit.export.fp16 import float16_nodes, to_fp16
from toolkit.export.int8 import learnt_names, ort_optimized, quantize_int8
from toolkit.export.parity import measure_parity
from toolkit.export.samples import CALIBRATION_SAMPLES, batch_of
from toolkit.training.data import Samples
from toolkit_deploy import names
from toolkit_deploy.errors import ParityError
from toolkit_deploy.pipeline import predict_arrays
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import ModelSpec

if TYPE_CHECKING:
    import onnx
    import torch

    from toolkit.export.parity import Gates

QUANTIZE_MODES = ("int8",)
#: Seconds the speed gate may spend timing (FP32 and INT8 runs alternating, best of each).
SPEED_BUDGET_S = 3.0


@dataclass(frozen=True)
class FP16Tolerance:
    """Logit tolerances of the FP16 variant against PyTorch (float16 keeps ~3 decimal digits);
    its top-1 agreement gate is the export's (`--min-agreement`, default 1.0).

    Measured on the built-in recipes' demo models (CPU provider, benchmarks/quantize.py): max
    |Δlogit| from 2e-5 (text-bag) to 7.5e-3 (audio-cnn), max relative Δ 8e-2 (a logit near 0).
    |Δlogit| <= 0.05 + 0.01·|logit| leaves a margin of ~7× over the worst.
    """

    atol: float = 0.05
    rtol: float = 0.01


FP16_TOLERANCE = FP16Tolerance()


@dataclass(frozen=True)
class Variant:
    """Which variant of the proven FP32 graph to write.

    Attributes:
        quantize: `int8`, or None for a float model.
        fp16: Convert to float16 (exclusive with `quantize`).
        optimize: Save ONNX Runtime's basic-level optimised graph (before quantizing or
            converting, when combined).
        max_accuracy_drop: INT8 gate: the largest allowed drop of held-out accuracy from FP32,
            in points (1.0 = one percentage point).
    """

    quantize: str | None = None
    fp16: bool = False
    optimize: bool = False
    max_accuracy_drop: float = 1.0

    def __post_init__(self) -> None:
        if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"Unknown quantization {self.quantize!r}; valid: "
                             f"{', '.join(QUANTIZE_MODES)}.")
        if self.fp16 and self.quantize is not None:
            raise ValueError("--fp16 and --quantize are exclusive: a file is either float16 or "
                             "int8. Export them as two files.")
        if not (isinstance(self.max_accuracy_drop, int | float)
                and math.isfinite(self.max_accuracy_drop) and 0 <= self.max_accuracy_drop <= 100):
            raise ValueError("--max-accuracy-drop must be a number of points in [0, 100]. "
                             f"Got {self.max_accuracy_drop!r}.")

    @property
    def kind(self) -> str:
        """`int8`, `fp16`, `optimized` or `fp32` (no variant)."""
        return self.quantize or ("fp16" if self.fp16 else "optimized" if self.optimize else "fp32")


@dataclass(frozen=True)
class VariantReport:
    """A variant against the FP32 graph it was made from, on the same held-out samples.

    Attributes:
        kind: `int8`, `fp16` or `optimized`.
        method: How it was made, in words.
        n_samples: Held-out samples the accuracies are measured on.
        n_inputs: Model inputs compared (text: as written and long; audio: every window).
        accuracy_fp32: Held-out accuracy of the FP32 graph (ONNX Runtime).
        accuracy: Held-out accuracy of the variant.
        agreement: Top-1 agreement of the variant with FP32 over the compared inputs.
        max_abs_diff: Largest |Δlogit| of the variant against FP32.
        batch_size: Batch size the throughputs are measured at (`toolkit score`'s default).
        throughput_fp32: FP32 inputs per second (best of alternating runs); None if not timed.
        throughput: The variant's inputs per second.
        calibration_samples: Training inputs INT8 static quantization was calibrated on.
        provider: ONNX Runtime execution provider everything was measured on.
        kept_float: Nodes left in float32 (INT8: not quantized; FP16: not converted).
        not_validated: What these measurements do not show ('' when nothing is known).
        gates: The gates applied, in words.
        failures: One sentence per failed gate.
        float16_ops: FP16 on a provider other than CUDA: [operators it computed in float16,
            float16 operators in the file].
    """

    kind: str
    method: str
    n_samples: int
    n_inputs: int
    accuracy_fp32: float
    accuracy: float
    agreement: float
    max_abs_diff: float
    batch_size: int
    throughput_fp32: float | None
    throughput: float | None
    calibration_samples: int | None
    provider: str
    kept_float: tuple[str, ...]
    not_validated: str
    gates: tuple[str, ...]
    failures: tuple[str, ...] = field(default=())
    float16_ops: tuple[int, int] | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def accuracy_drop(self) -> float:
        """FP32 accuracy minus the variant's, in points."""
        return 100 * (self.accuracy_fp32 - self.accuracy)

    @property
    def speedup(self) -> float | None:
        if not (self.throughput and self.throughput_fp32):
            return None
        return self.throughput / self.throughput_fp32

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("kept_float", "gates", "failures", "float16_ops"):
            d[key] = None if d[key] is None else list(d[key])
        d.update(passed=self.passed, accuracy_drop_points=round(self.accuracy_drop, 4),
                 speedup=self.speedup)
        return d

    def table(self) -> str:
        """FP32 and the variant side by side, with the gates and what was not validated."""
        name = self.kind.upper()
        rows = [
            ("", "FP32", name, ""),
            ("held-out accuracy", f"{self.accuracy_fp32:.4f}", f"{self.accuracy:.4f}",
             f"drop {self.accuracy_drop:+.2f} points ({self.n_samples} samples)"),
            ("top-1 agreement", "", f"{self.agreement:.4f}",
             f"with FP32 on {self.n_inputs} inputs"),
            ("max |Δlogit|", "", f"{self.max_abs_diff:.3e}", "against FP32"),
        ]
        if self.speedup is not None:
            rows.append((f"inputs/s @ batch {self.batch_size}", f"{self.throughput_fp32:.1f}",
                         f"{self.throughput:.1f}", f"×{self.speedup:.2f}"))
        lines = [f"{a:<22}{b:>10}{c:>10}   {d}".rstrip() for a, b, c, d in rows]
        lines.append(f"{name}: {self.method}")
        lines.append(f"measured on {self.provider}")
        lines += [f"gate: {g}" for g in self.gates]
        if self.not_validated:
            lines.append(f"not validated: {self.not_validated}")
        lines += [f"gate failed: {f}" for f in self.failures]
        return "\n".join(lines)


def make_variant(
    proto: onnx.ModelProto,
    model: torch.nn.Module,
    spec: ModelSpec,
    variant: Variant,
    *,
    staged: Path,
    served: Sequence[np.ndarray],
    targets: Sequence[int],
    calibration: Samples | None,
    gates: Gates,
    decoder_options: dict[str, Any],
    target_ort: str | None = None,
) -> tuple[onnx.ModelProto, ModelSpec, VariantReport]:
    """Build `variant` from the proven FP32 graph and prove it, or raise.

    Args:
        proto: The FP32 graph, proven against PyTorch, with its metadata.
        model: The PyTorch model it was exported from.
        spec: The FP32 file's spec (its `parity` is the FP32 proof).
        variant: What to build.
        staged: The FP32 file, saved (the reference the variant is compared and timed against).
        served: The runtime decoder's arrays of the compared inputs, one per source; the first
            `len(targets)` are the held-out samples whose accuracy counts.
        targets: Class index of each held-out sample.
        calibration: Training samples for INT8 static calibration.
        gates: The FP32 parity gates (`Gates`), reused for `optimize`.
        decoder_options: Runtime decoder options.
        target_ort: The oldest ONNX Runtime the file must load on: the variant is held to the
            FP32 file's opset and IR version, capped by this runtime's (`target.retarget`).

    Returns:
        The variant's graph, its spec (its own `parity`, and `provenance.variant`) and the report.

    Raises:
        ParityError: A gate failed (the message has the side-by-side table); nothing is kept.
    """
    work = Path(tempfile.mkdtemp(prefix="variant.", dir=staged.parent))
    try:
        return _make_variant(proto, model, spec, variant, work, staged=staged, served=served,
                             targets=targets, calibration=calibration, gates=gates,
                             decoder_options=decoder_options, target_ort=target_ort)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _make_variant(proto: onnx.ModelProto, model: torch.nn.Module, spec: ModelSpec,
                  variant: Variant, work: Path, *, staged: Path, served: Sequence[np.ndarray],
                  targets: Sequence[int], calibration: Samples | None, gates: Gates,
                  decoder_options: dict[str, Any], target_ort: str | None
                  ) -> tuple[onnx.ModelProto, ModelSpec, VariantReport]:
    import onnx

    from toolkit.export.target import retarget

    reference = Predictor(staged, **decoder_options)
    inputs = batch_of(reference.decoder, list(served))
    learnt = learnt_names(model)
    graph = proto
    steps: list[str] = []
    kept: tuple[str, ...] = ()
    n_calibration = None
    if variant.optimize:
        graph = ort_optimized(staged, work / "optimized.onnx")
        steps.append("ONNX Runtime basic-level optimisation")
    if variant.quantize:
        if calibration is None or not len(calibration):
            raise ValueError("INT8 quantization needs calibration samples (the run's training "
                             "split); none were given.")
        arrays = [reference.decode(s) for s in calibration.sources]
        calib = batch_of(reference.decoder, arrays)[:CALIBRATION_SAMPLES]
        graph, method, kept, n_calibration = quantize_int8(graph, learnt, calib, work)
        steps.append(method)
    elif variant.fp16:
        graph, kept = to_fp16(graph, learnt)
        steps.append("float16 weights and arithmetic (onnxruntime.transformers.float16), "
                     "inputs and outputs in their original types")
    for key in ("producer_name", "producer_version", "doc_string"):
        setattr(graph, key, getattr(proto, key))
    # The FP32 file's opset and IR version (and the target runtime's caps), the opsets ONNX
    # Runtime and the quantizer import without using dropped, the full ONNX checker run.
    graph.ir_version = min(graph.ir_version, proto.ir_version)
    opset = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
    graph = retarget(graph, opset=None if opset == spec.opset else spec.opset,
                     target_ort=target_ort)
    onnx.helper.set_model_props(graph, spec.to_metadata())
    path = work / staged.name
    onnx.save_model(graph, path)
    candidate = Predictor(path, **decoder_options)

    kind = variant.kind
    if kind == "fp16":
        tol = FP16_TOLERANCE
        vs_torch = measure_parity(model, candidate, inputs, gates.batch_sizes, tol.atol,
                                  tol.rtol, gates.min_agreement)
        applied = (f"against PyTorch: |Δlogit| <= {tol.atol:g} + {tol.rtol:g}·|logit| (FP16 "
                   f"tolerances), top-1 agreement >= {gates.min_agreement:g}",)
    elif kind == "optimized":
        vs_torch = measure_parity(model, candidate, inputs, gates.batch_sizes, gates.atol,
                                  gates.rtol, gates.min_agreement)
        applied = (f"against PyTorch: |Δlogit| <= {gates.atol:g} + {gates.rtol:g}·|logit|, "
                   f"top-1 agreement >= {gates.min_agreement:g}",)
    else:
        # INT8 moves logits by design: they are reported, and held-out accuracy is the gate.
        vs_torch = replace(
            measure_parity(model, candidate, inputs, gates.batch_sizes, 0.0, 0.0, 0.0),
            passed=True, failures=(), gated=False)
        applied = (f"held-out accuracy drop from FP32 <= {variant.max_accuracy_drop:g} points "
                   "(--max-accuracy-drop)",
                   f"faster than FP32 at batch {names.BATCH_SIZE} on this machine")
    report = _compare(reference, candidate, inputs, served, targets, kind=kind,
                      method="; then ".join(steps), n_calibration=n_calibration, kept=kept,
                      gates=applied, time_it=kind != "fp16")
    if kind == "fp16" and report.provider != "CUDAExecutionProvider":
        counts = float16_nodes(path, work / "as-run.onnx")
        report = replace(report, float16_ops=counts,
                         not_validated=_not_validated_fp16(report.provider, *counts))
    failures = [f"{f} (against PyTorch)" for f in vs_torch.failures]
    if kind == "int8":
        failures += _int8_failures(report, variant.max_accuracy_drop)
    report = replace(report, failures=tuple(failures))
    del reference, candidate  # release the files
    if failures:
        raise ParityError(_refusal(report, vs_torch, kind), report)
    spec = replace(spec, parity=vs_torch,
                   provenance={**spec.provenance, "variant": report.to_dict()})
    onnx.helper.set_model_props(graph, spec.to_metadata())
    return graph, spec, report


def _compare(reference: Predictor, candidate: Predictor, inputs: np.ndarray,
             served: Sequence[np.ndarray], targets: Sequence[int], *, kind: str, method: str,
             n_calibration: int | None, kept: tuple[str, ...], gates: tuple[str, ...],
             time_it: bool) -> VariantReport:
    ref_logits = _logits(reference, inputs)
    logits = _logits(candidate, inputs)
    held_out = list(served[: len(targets)])
    rates: list[float | None] = [None, None]
    batch_size = names.BATCH_SIZE
    if time_it:
        batch = np.resize(inputs, (batch_size, *inputs.shape[1:]))
        rates = throughputs([reference, candidate], batch)
    provider = candidate.providers[0]
    return VariantReport(
        kind=kind, method=method, n_samples=len(targets), n_inputs=len(inputs),
        accuracy_fp32=_accuracy(reference, held_out, targets),
        accuracy=_accuracy(candidate, held_out, targets),
        agreement=float((logits.argmax(1) == ref_logits.argmax(1)).mean()),
        max_abs_diff=float(np.abs(logits - ref_logits).max()),
        batch_size=batch_size, throughput_fp32=rates[0], throughput=rates[1],
        calibration_samples=n_calibration, provider=provider, kept_float=kept,
        not_validated="", gates=gates,
    )


def _not_validated_fp16(provider: str, in_float16: int, converted: int) -> str:
    return (f"CUDA float16 execution. Parity was measured on {provider}, which computed "
            f"{in_float16} of the {converted} float16 operators in float16: ONNX Runtime runs "
            "those it has no float16 kernel for in float32 between casts it inserts. What this "
            "validates is float16 weights and the rounding of activations where the file casts, "
            "not GPU float16 arithmetic. On a CUDA machine run `toolkit evaluate MODEL.onnx "
            "--data DIR --device cuda` (onnxruntime-gpu) and compare with the FP32 file's "
            "figures.")


def _int8_failures(report: VariantReport, max_drop: float) -> list[str]:
    failures = []
    # Rounded to the precision the figures are printed at, so a drop of exactly the gate passes.
    if round(report.accuracy_drop, 6) > max_drop:
        failures.append(
            f"held-out accuracy dropped {report.accuracy_drop:.2f} points (FP32 "
            f"{report.accuracy_fp32:.4f}, INT8 {report.accuracy:.4f}; one sample is "
            f"{100 / report.n_samples:.2f} points) > {max_drop:g} (--max-accuracy-drop).")
    if report.speedup is not None and report.speedup <= 1.0:
        failures.append(
            f"INT8 is not faster than FP32 at batch {report.batch_size} on this machine "
            f"(×{report.speedup:.2f}: {report.throughput:.1f} vs {report.throughput_fp32:.1f} "
            "inputs/s).")
    return failures


def _refusal(report: VariantReport, vs_torch: Any, kind: str) -> str:
    tips = {
        "int8": "What to try: keep the FP32 file (or --optimize); when accuracy is the problem, "
                "more training data of each class (calibration reads the run's training split) "
                "or a larger --max-accuracy-drop if that loss is acceptable. Small models are "
                "often not faster in INT8: the float preprocessing, quantize/dequantize steps "
                "and memory traffic outweigh the cheaper arithmetic.",
        "fp16": "What to try: keep the FP32 file; a model whose logits or activations exceed "
                "float16's range (65504) or need more than ~3 digits cannot be float16.",
        "optimized": "What to try: export without --optimize (the plain graph passed).",
    }
    return (f"{kind.upper()} variant refused, nothing written.\n{report.table()}\n"
            f"{vs_torch.summary()}\n{tips[kind]}")


def _logits(predictor: Predictor, inputs: np.ndarray, chunk: int = 64) -> np.ndarray:
    return np.concatenate([predictor.run(inputs[i : i + chunk])[0]
                           for i in range(0, len(inputs), chunk)])


def _accuracy(predictor: Predictor, samples: list[np.ndarray], targets: Sequence[int],
              chunk: int = 64) -> float:
    """Held-out accuracy as the runtime predicts (a windowed sample: mean of its windows)."""
    probs = np.concatenate([predict_arrays(predictor, samples[i : i + chunk])
                            for i in range(0, len(samples), chunk)])
    return float((probs.argmax(1) == np.asarray(targets)).mean())


def throughputs(predictors: Sequence[Predictor], batch: np.ndarray,
                budget_s: float = SPEED_BUDGET_S, rounds: tuple[int, int] = (5, 200)
                ) -> list[float]:
    """Inputs per second of each predictor on `batch`: runs alternate between them (the order
    reversed every round, so neither always runs on a warmer machine), best of each.

    Args:
        predictors: Models taking `batch`.
        batch: One decoded batch.
        budget_s: Seconds to spend, after at least `rounds[0]` rounds.
        rounds: (fewest, most) rounds.
    """
    for p in predictors:
        p.run(batch)  # warm up: first runs allocate
    best = [math.inf] * len(predictors)
    start = time.perf_counter()
    done = 0
    while done < rounds[0] or (done < rounds[1] and time.perf_counter() - start < budget_s):
        order = range(len(predictors)) if done % 2 == 0 else reversed(range(len(predictors)))
        for i in order:
            t0 = time.perf_counter()
            predictors[i].run(batch)
            best[i] = min(best[i], time.perf_counter() - t0)
        done += 1
    return [len(batch) / b for b in best]
