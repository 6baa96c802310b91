"""`export_run`: a training run → one ONNX file with metadata, proven against PyTorch.

The file is written inside a temporary folder next to `out` and moved into place only when every
parity gate holds, so a failed export leaves nothing at `out` (and a crash leaves no half file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolkit.export.divergence import describe, program_divergences
from toolkit.export.graph import MIN_OPSET, export_program
from toolkit.export.parity import DEFAULT_GATES, Gates, measure_parity
from toolkit.export.samples import batch_of, calibration_samples, held_out_samples, long_texts
from toolkit.export.target import export_opset, lowest_ir_version, retarget
from toolkit.export.variants import Variant, VariantReport, make_variant
from toolkit.run import RESULTS, Run, load_run, run_figures
from toolkit.training.data import Samples
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import ParityError
from toolkit_deploy.predictor import Predictor
from toolkit_deploy.spec import ModelSpec, ParityReport
from toolkit_deploy.writing import output_errors

#: Protobuf cannot hold more than 2 GiB; larger models keep their weights in `<out>.data`.
_PROTO_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ExportResult:
    """The written file, what it says about itself, its parity report and, for a variant (INT8,
    FP16, optimised), the variant's figures side by side with FP32."""

    path: Path
    spec: ModelSpec
    report: ParityReport
    variant: VariantReport | None = None


def _held_out_figures(run: Run) -> dict[str, Any]:
    """The run's final figures on its held-out split (for model cards), without the per-class
    detail."""
    if not (run.path / RESULTS).is_file():
        return {}
    results = run_figures(run.path)
    keys = ("split", "n_samples", "accuracy", "macro_f1", "weighted_f1")
    return {k: results[k] for k in keys if k in results}


def _versions() -> dict[str, str]:
    import onnxruntime
    import onnxscript

    from toolkit.training.trainer import versions

    return {**versions(), "onnxscript": onnxscript.__version__,
            "onnxruntime": onnxruntime.__version__}


def _save(proto, path: Path) -> None:
    import onnx

    large = proto.ByteSize() > _PROTO_LIMIT
    onnx.save_model(proto, path, save_as_external_data=large, all_tensors_to_one_file=True,
                    location=f"{path.name}.data" if large else None)


def check_destination(out: str | os.PathLike, overwrite: bool) -> Path:
    """`out` as a Path, refused before any work when it cannot or must not be written."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"--out must end in .onnx. Got {out}.")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it.")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"Output folder {out.parent} does not exist; create it first.")
    return out


def export_run(
    run: str | os.PathLike | Run,
    out: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    weights: str = "best",
    n_samples: int = 256,
    gates: Gates = DEFAULT_GATES,
    opset: int | None = None,
    target_ort: str | None = None,
    overwrite: bool = False,
    variant: Variant | None = None,
) -> ExportResult:
    """Export a run to `out` and prove its parity with PyTorch on held-out samples.

    Args:
        run: The run folder (or a loaded `Run`).
        out: The `.onnx` file to write.
        data_dir: Where the run's data is now (default: where it was trained).
        weights: `best` or `last`.
        n_samples: Held-out samples to compare (at most; all when the split is smaller).
        gates: The parity gates.
        opset: The ai.onnx opset to write (default: the exporter's, 18); below 18 the model
            is converted down (`toolkit.export.target`).
        target_ort: The oldest ONNX Runtime release the file must load on (e.g. `1.16`): caps
            the opset and IR version.
        overwrite: Replace an existing `out`.
        variant: Write an INT8, FP16 or optimised variant instead of the FP32 graph (proven
            first); INT8 is calibrated on the run's training samples.

    Raises:
        ParityError: A gate failed; its `report` has the figures. Nothing is written at `out`.
        TargetError: The model cannot be expressed for `opset` / `target_ort`.
        FileExistsError: `out` exists and `overwrite` is False.
    """
    out = check_destination(out, overwrite)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1. Got {n_samples}.")
    run = run if isinstance(run, Run) else load_run(run)
    data_dir = Path(data_dir) if data_dir is not None else run.data_dir
    recipe = run.recipe
    if run.multilabel and variant is not None and variant.kind != "fp32":
        raise ValueError(f"--variant {variant.kind} is not available for multi-label runs yet "
                         "(its gates compare single labels); export the FP32 graph.")
    task = ({"task": "multilabel", "thresholds": run.thresholds()} if run.multilabel else {})
    spec = ModelSpec(
        **task,
        modality=recipe.modality,
        labels=run.labels,
        preprocess=run.preprocess(),
        opset=export_opset(opset, target_ort, floor=MIN_OPSET),
        provenance={
            "recipe": recipe.to_dict(), "run": str(run.path.resolve()), "weights": weights,
            "best_epoch": run.info.get("best_epoch"),
            "data_fingerprint": run.info.get("data_fingerprint"),
            "results": _held_out_figures(run),
        },
    )
    calibration = (calibration_samples(run, data_dir)
                   if variant is not None and variant.quantize else None)
    return export_proven(run.load_model(weights), spec, held_out_samples(run, data_dir, n_samples),
                         out, name=recipe.name, decoder_options=recipe.data.decoder_options,
                         gates=gates, target=(opset, target_ort), variant=variant,
                         calibration=calibration)


def export_proven(
    model: torch.nn.Module,
    spec: ModelSpec,
    held_out: Samples,
    out: Path,
    *,
    name: str,
    decoder_options: dict[str, Any],
    gates: Gates,
    export_options: dict[str, Any] | None = None,
    target: tuple[int | None, str | None] = (None, None),
    variant: Variant | None = None,
    calibration: Samples | None = None,
) -> ExportResult:
    """Export `model` (preprocessing included) to `out` once the file proves its parity with
    PyTorch on `held_out`, decoded by the runtime decoder that `spec` describes.

    Args:
        model: Takes the decoder's arrays, returns logits over `spec.labels`.
        spec: What the file will say about itself; its `opset` is the one exported at (see
            `target.export_opset`), its `parity` is measured here.
        held_out: Real labelled inputs the file is proven on.
        out: The destination, checked by `check_destination`.
        name: What the model is, for the file's doc string.
        decoder_options: Runtime decoder options (e.g. a text table's encoding).
        gates: The parity gates.
        export_options: More `torch.onnx.export` options (e.g. `custom_translation_table`).
        target: `(opset, target_ort)` to convert the exported graph to (`target.retarget`),
            before its parity is proven.
        variant: Write this variant (`toolkit.export.variants`) of the proven graph instead,
            once it passes its own gates.
        calibration: Training samples INT8 static quantization is calibrated on.
    """
    import onnx

    model = model.eval()
    train_decoder = create_decoder(spec.modality, spec.preprocess, **decoder_options)
    sources = list(held_out.sources)
    if spec.modality == "text":
        texts = [train_decoder.read(s) for s in sources]
        sources = texts + long_texts(texts, train_decoder)  # two lengths: as written, and full
    decoded = [train_decoder(s) for s in sources]
    samples = batch_of(train_decoder, decoded)

    program = export_program(model, samples[: min(2, len(samples))], spec.opset,
                             multilabel=spec.multilabel, **(export_options or {}))
    proto = program.model_proto
    if target != (None, None):
        proto = retarget(proto, opset=target[0], target_ort=target[1])
    # Older runtimes load the file too (ONNX Runtime 1.16 refuses IR 10 before reading a node).
    proto = lowest_ir_version(proto)
    made_by = _versions()
    spec = replace(
        spec,
        opset=next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        provenance={**spec.provenance, "versions": made_by,
                    "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
    )
    proto.producer_name, proto.producer_version = "toolkit", made_by["toolkit"]
    proto.doc_string = f"{name} classifier over {len(spec.labels)} labels, by toolkit."
    onnx.helper.set_model_props(proto, spec.to_metadata())
    onnx.checker.check_model(proto, full_check=True)

    with output_errors(out.parent / f".{out.name}.*", out):
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        staged = staging / out.name
        with output_errors(staged, out):
            _save(proto, staged)
        predictor = Predictor(staged, **decoder_options)
        served = [predictor.decode(s) for s in sources]
        mismatched = [str(s)[:80] for s, a, b in zip(sources, served, decoded, strict=True)
                      if not np.array_equal(a, b)]
        report = measure_parity(model, predictor, batch_of(predictor.decoder, served),
                                gates.batch_sizes, gates.atol, gates.rtol, gates.min_agreement,
                                mismatched,
                                thresholds=spec.thresholds if spec.multilabel else None)
        del predictor  # release the file before it is rewritten
        if not report.passed:
            where = describe(program_divergences(program, batch_of(train_decoder, decoded),
                                                 atol=gates.atol, rtol=gates.rtol))
            raise ParityError(f"Export refused, nothing written to {out}.\n"
                              f"{report.summary('label-set' if spec.multilabel else 'top-1')}\n"
                              f"{where}", report)
        spec = replace(spec, parity=report)
        figures = None
        if variant is not None and variant.kind != "fp32":
            proto, spec, figures = make_variant(
                proto, model, spec, variant, staged=staged, served=served,
                targets=held_out.targets, calibration=calibration, gates=gates,
                decoder_options=decoder_options, target_ort=target[1])
            report = spec.parity
        onnx.helper.set_model_props(proto, spec.to_metadata())
        with output_errors(staged, out):
            _save(proto, staged)
            # External data first, so the .onnx never points at weights that are not there yet.
            for part in sorted(staging.iterdir(), key=lambda p: p.suffix == ".onnx"):
                os.replace(part, out.parent / part.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out, spec, report, figures)
