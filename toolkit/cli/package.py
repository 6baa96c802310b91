"""`toolkit package model.onnx --out DIST --name NAME`."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "dist", required=True, type=click.Path(file_okay=False),
              help="Folder for the wheels (created if needed).")
@click.option("--name", required=True,
              help="Package and command name: lower-case letters and digits, words joined by "
                   "- or _ (e.g. digits-clf); imported with _ for - (digits_clf).")
@click.option("--version", default="0.1.0", show_default=True, help="The package's version.")
@click.option("--gpu", is_flag=True,
              help="Depend on onnxruntime-gpu and run on CUDA (an error at load time if CUDA "
                   "is not usable) instead of onnxruntime on the CPU.")
@library_errors
def package(model: str, dist: str, name: str, version: str, gpu: bool) -> None:
    """Build wheels that install MODEL as a runtime-only package NAME (no torch).

    DIST gets NAME's wheel (the model, its sha256, a model card) and the runtime's
    (toolkit-deploy). `pip install --find-links DIST NAME` then gives the command
    `NAME score INPUT --out preds.csv` (the options and output of `toolkit score`), `NAME info`,
    and `import NAME; NAME.load()` (with _ for -), a ready Predictor that refuses a modified
    model file. Names that would shadow the standard library or the runtime's dependencies
    (json, numpy, site, ...) are refused.
    """
    from toolkit.packaging import package_model

    built = package_model(model, dist, name, version=version, gpu=gpu)
    click.echo(f"wrote {built.model_wheel}\nwrote {built.runtime_wheel}\n"
               f"{name} requires {', '.join(built.requires)}\n"
               f"install: pip install --find-links {dist} {name}")
