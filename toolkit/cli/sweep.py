"""`toolkit sweep RECIPE --data DIR --out DIR --grid section.key=v1,v2 …`."""

import click

from toolkit_deploy.cli import library_errors


@click.command()
@click.argument("recipe")
@click.option("--data", "data_dir", required=True, type=click.Path(exists=True),
              help="Labelled data, as for `toolkit train`.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Sweep folder: trial-NNN run folders, sweep.csv, sweep.json, best.")
@click.option("--grid", multiple=True, required=True, metavar="SECTION.KEY=V1,V2",
              help="Values of one recipe key, repeatable; trials are every combination, e.g. "
                   "--grid optim.lr=0.1,0.01 --grid model.hidden=[64],[128,64].")
@click.option("--random", type=click.IntRange(min=1), default=None,
              help="Train only this many combinations, drawn at random (--seed).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the --random draw.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a recipe key in every trial.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@library_errors
def sweep(recipe: str, data_dir: str, out: str, grid: tuple[str, ...], random: int | None,
          seed: int, overrides: tuple[str, ...], device: str, quiet: bool) -> None:
    """Train RECIPE once per combination of --grid values and rank the trials.

    The data is decoded once and shared by the trials. OUT gets a run folder per trial, the table
    sorted by the validation figure the recipe monitors (sweep.csv, sweep.json) and `best`, a link
    to the best trial. Started again with the same options, a sweep skips finished trials and
    resumes an interrupted one.
    """
    from toolkit.recipe import parse_override
    from toolkit.sweep import format_table
    from toolkit.sweep import sweep as run_sweep

    base = dict(parse_override(text) for text in overrides)
    rows = run_sweep(recipe, data_dir, out, grid, random=random, seed=seed, base=base,
                     device=device, progress=not quiet)
    click.echo(format_table(rows))
    skipped = sum(r["skipped"] for r in rows)
    click.echo(f"best: {rows[0]['trial']} → {out}/best"
               + (f"  ({skipped} finished trials skipped)" if skipped else ""))
