"""`toolkit data make KIND OUT`."""

import click

from toolkit.demo import KINDS
from toolkit_deploy.cli import library_errors


@click.group()
def data() -> None:
    """Make demo datasets (generated here; nothing is downloaded)."""


@data.command()
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--per-class", type=click.IntRange(min=1), default=200, show_default=True,
              help="Files per class.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@library_errors
def make(kind: str, out: str, per_class: int, seed: int) -> None:
    """Write the demo dataset KIND to OUT as OUT/<class>/<file>.

    KIND: shapes (PNG images of 5 shape classes with random colour, size, position, rotation and
    background clutter); text (.txt shop comments, praise / complaint / question / spam, in
    English, Chinese and French, some with a BOM); docstrings (.txt paragraphs of this Python's
    standard-library docstrings in 5 topics: text, numbers, files, network, concurrency); sounds
    (WAV and FLAC clips of 6 sound-event classes at mixed sample rates, bit depths and channel
    counts); motion (MP4 and WebM clips of a shape that grows, moves, rotates or shrinks).
    """
    from toolkit.demo import make_dataset

    n = make_dataset(kind, out, per_class=per_class, seed=seed)
    click.echo(f"wrote {n} files to {out}")
