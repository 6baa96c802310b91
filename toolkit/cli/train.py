"""`toolkit train RECIPE --data DIR --out RUN` and `toolkit train --resume RUN`."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("recipe", required=False)
@click.option("--data", "data_dir", type=click.Path(exists=True),
              help="Labelled folder DIR/<class>/<file>, or DIR/train|val|test/<class>/<file>; "
                   "for text recipes also a .csv/.jsonl table (data.text_column, "
                   "data.label_column).")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to create.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a recipe key, e.g. --set optim.lr=0.01 --set model.hidden=[64,32].")
@click.option("--epochs", type=click.IntRange(min=1), help="Same as --set train.epochs=N.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Same as --set train.batch_size=N.")
@click.option("--seed", type=int, help="Same as --set train.seed=N.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False),
              help="Continue this interrupted run from its last checkpoint (its own recipe, "
                   "split and data; --data only if the data moved).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="cuda is an error when no GPU is usable.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@library_errors
def train(recipe: str | None, data_dir: str | None, out: str | None, overrides: tuple[str, ...],
          epochs: int | None, batch_size: int | None, seed: int | None, resume: str | None,
          device: str, overwrite: bool, quiet: bool) -> None:
    """Train RECIPE (a built-in name, see `toolkit recipes`, or a .toml file) on --data.

    The run folder gets the resolved recipe, labels, split, per-epoch metrics, best and last
    weights (safetensors), a checkpoint for --resume, and the final figures on the held-out split.
    Under `torchrun --nproc-per-node N --no-python toolkit train …` the N processes train one
    model with DistributedDataParallel; only rank 0 writes the run folder.
    """
    import json
    import os

    from toolkit.recipe import load_recipe, parse_override
    from toolkit.training.trainer import resume as resume_run
    from toolkit.training.trainer import train as run_training

    if resume:
        given = [name for name, value in (("RECIPE", recipe), ("--out", out), ("--set", overrides),
                 ("--epochs", epochs), ("--batch-size", batch_size), ("--seed", seed),
                 ("--overwrite", overwrite)) if value]
        if given:
            raise click.UsageError(f"--resume continues a run with its own recipe and folder; "
                                   f"drop {', '.join(given)}.")
        run = resume_run(resume, data_dir=data_dir, device=device, progress=not quiet)
    else:
        missing = [name for name, value in (("RECIPE", recipe), ("--data", data_dir),
                                            ("--out", out)) if not value]
        if missing:
            raise click.UsageError(f"Missing {', '.join(missing)} (or pass --resume RUN).")
        values = dict(parse_override(text) for text in overrides)
        for key, value in (("train.epochs", epochs), ("train.batch_size", batch_size),
                           ("train.seed", seed)):
            if value is not None:
                values[key] = value
        run = run_training(load_recipe(recipe, values), data_dir, out, device=device,
                           overwrite=overwrite, progress=not quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 reports
    figures = json.loads((run.path / "results.json").read_text(encoding="utf-8"))
    shown = (f"micro F1 {figures['micro_f1']:.4f}, macro F1 {figures['macro_f1']:.4f}, mAP "
             f"{figures['mAP']:.4f}, exact match {figures['exact_match']:.4f}"
             if figures.get("task") == "multilabel" else
             f"accuracy {figures['accuracy']:.4f}, macro F1 {figures['macro_f1']:.4f}")
    click.echo(
        f"held-out ({figures['split']}, {figures['n_samples']} samples): {shown} "
        f"(best epoch {figures['best_epoch']})\nrun saved to {run.path}"
    )
