"""`toolkit export RUN --out model.onnx`, or `toolkit export --module F.py:FACTORY --weights W
--spec SPEC --out model.onnx` for a model trained elsewhere."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("run", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .onnx file.")
@click.option("--module", "module", metavar="FILE.py:FACTORY",
              help="Export your own PyTorch classifier instead of a run: FACTORY() returns the "
                   "nn.Module (needs --weights and --spec).")
@click.option("--spec", "spec", type=click.Path(exists=True, dir_okay=False),
              help="With --module: TOML with modality, labels, samples and [preprocess].")
@click.option("--weights", default=None,
              help="A run's `best` or `last` weights [default: best]; with --module, a "
                   ".safetensors file.")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Parity gate: |Δlogit| <= atol + rtol·|logit|.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Parity gate, relative part.")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Parity gate: smallest top-1 agreement with PyTorch.")
@click.option("--samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="Held-out samples compared (all when the split is smaller).")
@click.option("--opset", type=click.IntRange(min=1), default=None,
              help="ai.onnx opset to write; below the exporter's 18 the graph is converted, and "
                   "an operator that cannot be expressed is named  [default: 18]")
@click.option("--target-ort", metavar="X.Y",
              help="Oldest ONNX Runtime the file must load on: caps the opset and IR version.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="Write an INT8 model (ONNX Runtime quantization: static QDQ calibrated on the "
                   "run's training samples (--module: the spec's `calibration`) for "
                   "convolutional models, dynamic for text), refused "
                   "unless its held-out accuracy is within --max-accuracy-drop of FP32 and it is "
                   "faster than FP32 at the scoring batch size on this machine.")
@click.option("--max-accuracy-drop", type=click.FloatRange(0, 100), default=1.0,
              show_default=True, metavar="POINTS",
              help="INT8 gate: largest held-out accuracy drop from FP32, in percentage points.")
@click.option("--fp16", is_flag=True,
              help="Write a float16 model for GPUs (inputs and outputs keep their types; "
                   "preprocessing and softmax stay float32), gated against PyTorch at "
                   "|Δlogit| <= 0.05 + 0.01·|logit| and --min-agreement. Without CUDA the "
                   "check runs on the CPU provider, which computes in float32 between casts: "
                   "the file records that CUDA float16 execution was not validated.")
@click.option("--optimize", is_flag=True,
              help="Write ONNX Runtime's offline-optimised graph (basic level: standard "
                   "operators only, portable), gated like FP32; with --quantize or --fp16 it is "
                   "optimised first.")
@click.option("--data", "data_dir", type=click.Path(exists=True),
              help="Where the run's data is now, if it moved since training; with --module, "
                   "labelled samples instead of the spec's.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@library_errors
def export(run: str | None, out: str, module: str | None, spec: str | None, weights: str | None,
           atol: float, rtol: float, min_agreement: float, samples: int, opset: int | None,
           target_ort: str | None, quantize: str | None, max_accuracy_drop: float, fp16: bool,
           optimize: bool, data_dir: str | None, overwrite: bool) -> None:
    """Export RUN to one ONNX file and prove it matches PyTorch on held-out samples.

    The graph takes what the runtime decoder gives (uint8 images N×H×W×C; int64 token ids N×L
    for text), dynamic N, and does the arithmetic preprocessing itself; it outputs `logits` and
    `probabilities`. Labels, preprocessing (a text model's tokenizer included), provenance and the
    parity report are stored in the file. Text parity runs every held-out text as written and
    repeated past the model's length. If a parity gate fails, the report is printed, the exit
    code is 1 and nothing is written at --out.

    With --module, --weights and --spec instead of RUN, any PyTorch classifier is exported the
    same way, proven on the spec's labelled samples (see the README, "Bring your own model").

    --quantize int8, --fp16 and --optimize write a variant instead: the FP32 graph is proven
    first, then the variant against it and PyTorch; FP32 and the variant are printed side by
    side, and a variant that fails a gate is refused (exit code 1, nothing written).
    --fp16 and --quantize are exclusive.
    """
    from toolkit.export.onnx_export import export_run
    from toolkit.export.parity import Gates
    from toolkit.export.variants import Variant

    if fp16 and quantize:
        raise click.UsageError("--fp16 and --quantize are exclusive: a file is either float16 "
                               "or int8. Export them as two files.")
    variant = Variant(quantize, fp16, optimize, max_accuracy_drop)

    gates = Gates(atol, rtol, min_agreement)
    options = dict(n_samples=samples, gates=gates, opset=opset, target_ort=target_ort,
                   overwrite=overwrite)
    if module is not None:
        if run is not None or not (weights and spec):
            raise click.UsageError("--module takes --weights FILE.safetensors and --spec "
                                   "SPEC.toml, and no RUN.")
        from toolkit.export.byo import export_module_file

        result = export_module_file(module, weights, spec, out, samples=data_dir,
                                    variant=variant, **options)
    else:
        if run is None or spec is not None:
            raise click.UsageError("Give a RUN folder to export (or --module, --weights and "
                                   "--spec for your own model).")
        if weights not in (None, "best", "last"):
            raise click.BadParameter(f"a run's weights are `best` or `last`. Got {weights!r}.",
                                     param_hint="--weights")
        result = export_run(run, out, data_dir=data_dir, weights=weights or "best",
                            variant=variant, **options)
    click.echo(result.report.summary("label-set" if result.spec.multilabel else "top-1"))
    kind = ""
    if result.variant is not None:
        click.echo(result.variant.table())
        kind = f"{result.variant.kind.upper()}, "
    click.echo(f"wrote {result.path} ({kind}opset {result.spec.opset}, "
               f"{len(result.spec.labels)} labels)")
