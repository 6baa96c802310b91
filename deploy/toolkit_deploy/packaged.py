"""The runtime side of a model package built by `toolkit package`: loading its model after an
integrity check, and its command line (`NAME score`, `NAME info`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from toolkit_deploy.errors import ModelFormatError
from toolkit_deploy.files import sha256_of
from toolkit_deploy.predictor import Predictor


def load_checked(path: Path, sha256: str, device: str = "cpu", threads: int | None = None,
                 **decoder_options: Any) -> Predictor:
    """A `Predictor` for the packaged model at `path`, after checking the file is the one that was
    packaged.

    Raises:
        ModelFormatError: The file's sha256 is not the packaged one (it was modified).
    """
    found = sha256_of(path)
    if found != sha256:
        raise ModelFormatError(
            f"{path} was modified after packaging: its sha256 is {found}, the package expects "
            f"{sha256}. Reinstall the package (pip install --force-reinstall …) instead of "
            "editing the model inside it."
        )
    return Predictor(path, device, threads, **decoder_options)


def package_cli(name: str, version: str, load: Callable[..., Predictor],
                model_path: Callable[[], Path], sha256: str, device: str = "cpu") -> click.Group:
    """The `NAME` command of a model package: `score` (the options and output of
    `toolkit score`) and `info` (what the model says about itself)."""
    from toolkit_deploy.cli import (
        SCORE_HELP,
        cli_score_options,
        library_errors,
        run_score_command,
        score_options,
    )

    group = click.Group(
        name=name, help=f"The {name} model, packaged by toolkit. Commands: score, info.",
        context_settings={"help_option_names": ["-h", "--help"]})
    group = click.version_option(version, prog_name=name)(group)

    @group.command(help=f"Score every file under INPUT with the {name} model.\n" + SCORE_HELP)
    @score_options(device)
    @library_errors
    def score(inputs: str, out: str, device: str, threads: int | None, encoding: str | None,
              **options: Any) -> None:
        predictor = load(device=device, threads=threads,
                         **({"encoding": encoding} if encoding else {}))
        run_score_command(predictor, inputs, out, cli_score_options(
            {**options, "device": device, "threads": threads, "encoding": encoding}))

    @group.command()
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @library_errors
    def info(as_json: bool) -> None:
        """Labels, input, outputs, preprocessing, parity and provenance of the model."""
        from toolkit_deploy.info import describe, for_terminal

        path = model_path()
        found = sha256_of(path)
        details = {"package": name, "version": version, "sha256": found,
                   "integrity": "ok" if found == sha256 else "MODIFIED", **describe(path)}
        if as_json:
            click.echo(json.dumps(details, indent=2, ensure_ascii=False))
            return
        details = for_terminal(details)  # no escape sequences from the file reach the terminal
        click.echo(f"{name} {version}  model sha256 {found[:16]}… ({details['integrity']})")
        click.echo(f"modality   {details['modality']}")
        click.echo(f"labels     {', '.join(details['labels'])}")
        for kind in ("inputs", "outputs"):
            for t in details[kind]:
                click.echo(f"{kind[:-1]:<10} {t['name']}: {t['dtype']} {t['shape']}")
        if details["parity"]:
            from toolkit_deploy.spec import ParityReport

            click.echo(ParityReport.from_dict(details["parity"]).summary())

    return group
