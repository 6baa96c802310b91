"""Parity: the exported model against PyTorch, on real held-out samples decoded by the runtime.

minGPT's three levels: numbers (max |Δlogit|, max |Δprob|), decisions (top-1 agreement), and the
input itself (the runtime decoder, built from the file's metadata, must give the same arrays as the
decoder training used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import ParityReport


@dataclass(frozen=True)
class Gates:
    """What an exported file must prove on the held-out samples before it is written.

    Attributes:
        atol: A logit passes when |Δ| <= atol + rtol * |logit_torch| (numpy.allclose).
        rtol: See `atol`.
        min_agreement: Smallest top-1 agreement with PyTorch, per batch size.
        batch_sizes: ONNX Runtime batch sizes the samples are run at.
    """

    atol: float = 1e-4
    rtol: float = 1e-3
    min_agreement: float = 1.0
    batch_sizes: tuple[int, ...] = (1, 16)

    def __post_init__(self) -> None:
        if not (self.batch_sizes and all(b >= 1 for b in self.batch_sizes)):
            raise ValueError(f"Every parity batch size must be >= 1. Got {self.batch_sizes}.")
        if self.atol < 0 or self.rtol < 0 or not 0 <= self.min_agreement <= 1:
            raise ValueError("atol and rtol must be >= 0 and min_agreement in [0, 1].")


DEFAULT_GATES = Gates()


def torch_logits(model: torch.nn.Module, batch: np.ndarray, chunk: int = 64) -> np.ndarray:
    """PyTorch's logits for a decoded batch, on the CPU in float32."""
    model.eval()
    with torch.no_grad():
        parts = [model(torch.from_numpy(batch[i : i + chunk])).numpy()
                 for i in range(0, len(batch), chunk)]
    return np.concatenate(parts)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def measure_parity(
    model: torch.nn.Module,
    predictor: Predictor,
    samples: np.ndarray,
    batch_sizes: Sequence[int] = DEFAULT_GATES.batch_sizes,
    atol: float = DEFAULT_GATES.atol,
    rtol: float = DEFAULT_GATES.rtol,
    min_agreement: float = DEFAULT_GATES.min_agreement,
    decoder_mismatches: Sequence[str] = (),
    thresholds: Sequence[float] | None = None,
) -> ParityReport:
    """Compare PyTorch and ONNX Runtime on the same decoded samples at several batch sizes.

    Args:
        model: The PyTorch model (preprocessing included), in eval mode.
        predictor: The exported file, loaded by the runtime.
        samples: Decoded held-out samples (the runtime decoder's output).
        batch_sizes: ONNX Runtime batch sizes to run the samples at.
        atol: A logit passes when |Δ| <= atol + rtol * |logit_torch| (numpy.allclose).
        rtol: See `atol`.
        min_agreement: Smallest fraction of samples whose argmax must match, per batch size.
        decoder_mismatches: Samples whose runtime decoding differed from training's (a gate).
        thresholds: A multi-label model's decision thresholds: its probabilities are sigmoids
            (every one compared), and agreement is the share of samples whose label set (the
            labels at or above their threshold) is the same in both.
    """
    if len(samples) == 0:
        raise ValueError("Parity needs at least one held-out sample; the run has none.")
    reference = torch_logits(model, samples)
    if thresholds is None:
        ref_probs = _softmax(reference.astype(np.float64))
    else:
        ref_probs = 1 / (1 + np.exp(-reference.astype(np.float64)))
        ref_sets = ref_probs >= np.asarray(thresholds)[None, :]
    max_abs = max_rel = max_prob = 0.0
    agreement = 1.0
    violations = 0
    for bs in batch_sizes:
        outputs = [predictor.run(samples[i : i + bs]) for i in range(0, len(samples), bs)]
        logits = np.concatenate([o[0] for o in outputs])
        probs = np.concatenate([o[1] for o in outputs])
        diff = np.abs(logits - reference)
        max_abs = max(max_abs, float(diff.max()))
        # Relative to the logit, floored at 1e-3 so that logits near zero do not divide by ~0.
        max_rel = max(max_rel, float((diff / np.maximum(np.abs(reference), 1e-3)).max()))
        # The graph's own probabilities output, which is what the runtime serves.
        max_prob = max(max_prob, float(np.abs(probs - ref_probs).max()))
        violations += int((diff > atol + rtol * np.abs(reference)).sum())
        if thresholds is None:
            agreed = logits.argmax(1) == reference.argmax(1)
        else:
            agreed = ((probs >= np.asarray(thresholds)[None, :]) == ref_sets).all(1)
        agreement = min(agreement, float(agreed.mean()))
    failures = []
    if violations:
        failures.append(
            f"{violations} logits differ by more than {atol:g} + {rtol:g}·|logit| "
            f"(max |Δ| {max_abs:.3e}); raise --atol/--rtol only if that is acceptable."
        )
    if agreement < min_agreement:
        what = "top-1" if thresholds is None else "label-set"
        failures.append(f"{what} agreement {agreement:.4f} < {min_agreement} (--min-agreement).")
    if decoder_mismatches:
        failures.append(
            f"the runtime decoder (from the file's metadata) differs from training's on "
            f"{len(decoder_mismatches)} samples, e.g. {decoder_mismatches[0]}."
        )
    return ParityReport(
        passed=not failures, n_samples=len(samples), batch_sizes=tuple(batch_sizes),
        max_abs_diff=max_abs, max_rel_diff=max_rel, max_prob_diff=max_prob,
        top1_agreement=agreement, atol=atol, rtol=rtol, min_agreement=min_agreement,
        failures=tuple(failures),
    )
