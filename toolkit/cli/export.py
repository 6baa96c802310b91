"""`toolkit export RUN --out model.onnx`."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .onnx file.")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Parity gate: |Δlogit| <= atol + rtol·|logit|.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True,
              help="Parity gate, relative part.")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Parity gate: smallest top-1 agreement with PyTorch.")
@click.option("--samples", type=click.IntRange(min=1), default=256, show_default=True,
              help="Held-out samples compared (all when the split is smaller).")
@click.option("--weights", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True)
@click.option("--data", "data_dir", type=click.Path(exists=True),
              help="Where the run's data is now, if it moved since training.")
@click.option("--overwrite", is_flag=True, help="Replace an existing file.")
@library_errors
def export(run: str, out: str, atol: float, rtol: float, min_agreement: float, samples: int,
           weights: str, opset: int, data_dir: str | None, overwrite: bool) -> None:
    """Export RUN to one ONNX file and prove it matches PyTorch on held-out samples.

    The graph takes what the runtime decoder gives (uint8 images N×H×W×C; int64 token ids N×L
    for text), dynamic N, and does the arithmetic preprocessing itself; it outputs `logits` and
    `probabilities`. Labels, preprocessing (a text model's tokenizer included), provenance and the
    parity report are stored in the file. Text parity runs every held-out text as written and
    repeated past the model's length. If a parity gate fails, the report is printed, the exit
    code is 1 and nothing is written at --out.
    """
    from toolkit.export.onnx_export import Gates, export_run

    result = export_run(run, out, data_dir=data_dir, weights=weights, n_samples=samples,
                        gates=Gates(atol, rtol, min_agreement), opset=opset, overwrite=overwrite)
    click.echo(result.report.summary())
    click.echo(f"wrote {result.path} (opset {result.spec.opset}, {len(result.spec.labels)} labels)")
