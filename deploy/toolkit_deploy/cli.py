"""The `toolkit` command line. The runtime owns `score`, `inspect`, `evaluate` and `compare`; the
training stack (the `toolkit` distribution) plugs in `data`, `recipes`, `train`, `export` and
`package` through the `toolkit.commands` entry-point group.

Exit codes: 0 success; 1 fatal error (nothing or not everything could run); 2 usage error;
3 the run finished but some inputs failed (they are rows with an `error`); 4 `score` was
interrupted (Ctrl-C or SIGTERM) and can be resumed with `--resume`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click

from toolkit_deploy.names import BATCH_SIZE
from toolkit_deploy.plugins import INSTALL_TRAINING, commands, training_installed

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 4

#: Commands of the training stack, listed even when it is not installed so that they can say so.
TRAINING_COMMANDS = {
    "data": "Make demo datasets.",
    "recipes": "List the built-in training recipes.",
    "train": "Train a classifier from a recipe.",
    "export": "Export a run to one ONNX file with proven parity.",
    "package": "Build wheels that install one model as a runtime-only package.",
    "sweep": "Train a recipe over a grid of values and rank the trials.",
}
__all__ = ["INSTALL_TRAINING", "TRAINING_COMMANDS", "main", "training_installed"]

def library_errors(func: Callable) -> Callable:
    """Turn the library's expected errors into click errors (exit 1) with their message."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from toolkit_deploy.errors import ToolkitError

        try:
            return func(*args, **kwargs)
        except (ToolkitError, FileNotFoundError, FileExistsError, ValueError, TypeError) as e:
            raise click.ClickException(str(e)) from e

    return wrapper


def _missing_training(name: str) -> click.Command:
    @click.command(
        name,
        help=f"{TRAINING_COMMANDS[name]} (needs the training stack: {INSTALL_TRAINING})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    def command() -> None:
        raise click.ClickException(
            f"`toolkit {name}` needs the training stack (torch), which is not installed here; "
            f"this is a runtime-only install. Install it with: {INSTALL_TRAINING}"
        )

    return command


class ToolkitGroup(click.Group):
    """Loads plugin commands only when listed or called, so `--help` imports neither torch nor
    onnxruntime."""

    def _plugins(self) -> dict[str, Any]:
        return commands()

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(TRAINING_COMMANDS) | set(self._plugins())
        return sorted(names)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        plugin = self._plugins().get(name)
        if plugin is not None:
            return plugin.load()
        return _missing_training(name) if name in TRAINING_COMMANDS else None


@click.group(cls=ToolkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="toolkit-deploy", prog_name="toolkit")
def main() -> None:
    """Train classifiers, export them to one proven ONNX file, score folders without torch.

    Runtime commands: score, inspect, evaluate, compare, doctor. Training commands: data,
    recipes, train, sweep, export, package.
    """


def device_option(default: str = "cpu") -> Callable:
    return click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda"]), default=default,
        show_default=True,
        help="Where ONNX Runtime runs; cuda is an error (never a silent CPU run) if unusable.",
    )


threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="ONNX Runtime intra-op threads  [default: cores available]",
)
workers_option = click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Decoding threads (worker processes for video; actors with --engine ray)  "
         "[default: cores available]",
)
encoding_option = click.option(
    "--encoding", default=None,
    help="Encoding of text files (e.g. gb18030, latin-1)  [default: UTF-8, with or without BOM; "
         "other bytes are an error]",
)
text_column_option = click.option(
    "--text-column", default="text", show_default=True,
    help="Column (or JSON key) holding the text in a .csv/.jsonl table.",
)
batch_option = click.option(
    "--batch-size", type=click.IntRange(min=1), default=BATCH_SIZE, show_default=True,
    help="Files per ONNX Runtime call. The defaults of --batch-size, --workers and --threads "
         "were measured best, or within noise of the best, for every modality on 2 cores "
         "(benchmarks/README.md).",
)


SCORE_HELP = """
    Writes one row per file: path (relative to INPUT), label, score (its probability), error
    (empty when scored). A file that cannot be read becomes a row with its error and the run goes
    on. Rows are committed as they come; an interrupted run (exit code 4) keeps them and the same
    command with --resume finishes the table. Exit code 0 when every file was scored, 3 when some
    failed, 1 on a fatal error, 4 when interrupted.

    For a text model, INPUT may be a folder of .txt files (one text each) or one .txt file (one
    text per line), .csv or .jsonl file (one text per row, in --text-column); rows then also
    carry an id column: the row's id, or its line number.
    """


def score_options(device: str = "cpu") -> Callable:
    """The arguments and options of `toolkit score` after MODEL (packaged models' `score` has the
    same ones, with their own default device)."""
    decorators = [
        click.argument("inputs", metavar="INPUT", type=click.Path()),
        click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
                     help="Predictions table: .csv, .jsonl or .parquet (pyarrow); a summary "
                          "goes beside it as OUT.summary.json."),
        click.option("--top-k", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Add the K most probable labels and probabilities as columns."),
        click.option("--probs", is_flag=True,
                     help="Add every class's probability as a column prob_<label>."),
        batch_option, workers_option, threads_option, device_option(device), text_column_option,
        click.option("--id-column", default=None,
                     help="Column (or JSON key) with the row id of a .csv/.jsonl table  "
                          "[default: id when present, else the line number]"),
        encoding_option,
        click.option("--overwrite", is_flag=True, help="Replace an existing output file."),
        click.option("--include", multiple=True, metavar="GLOB",
                     help="Score only files whose path under INPUT matches (repeatable), e.g. "
                          "'2024/*.jpg'."),
        click.option("--exclude", multiple=True, metavar="GLOB",
                     help="Do not score files whose path under INPUT matches (repeatable)."),
        click.option("--manifest", is_flag=True,
                     help="INPUT lists the files to score, relative to its folder: a .txt file "
                          "(one path per line) or a .csv/.jsonl table (--path-column)."),
        click.option("--path-column", default="path", show_default=True,
                     help="Column (or JSON key) of a --manifest table holding the paths."),
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True,
                     help="local: this process. ray: Ray Data actors (the `ray` extra), one "
                          "session each, --workers of them (default: half the CPUs; one GPU "
                          "each with --device cuda); inputs must be readable at the same paths "
                          "on every node."),
        click.option("--address", metavar="ADDR", default=None,
                     help="With --engine ray: the Ray cluster to join (e.g. ray://head:10001)  "
                          "[default: start a local Ray]"),
        click.option("--resume", is_flag=True,
                     help="Continue the table an interrupted run (same model, inputs, options) "
                          "left as OUT.partial: no row twice, none missing. On a finished table "
                          "of the same run: nothing to do, exit as that run did."),
        click.option("--timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
                     help="Seconds one input may take to decode (any modality) before it "
                          "becomes a DecodeTimeout error row (a video's worker process is "
                          "killed, a stuck thread left behind); 0: no limit  [default: 300]"),
        click.option("--csv-safe", is_flag=True,
                     help="Prefix CSV cells (and column names) that a spreadsheet would run as "
                          "a formula (starting with = + - @, tab or CR) with a ' (CSV "
                          "injection); .csv output only."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]

    def apply(func: Callable) -> Callable:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def cli_score_options(cli: dict[str, Any]) -> Any:
    """`toolkit score`'s parsed options (all but MODEL, INPUT and --out) as the one frozen
    `ScoreOptions` the scorer is given."""
    from toolkit_deploy.score import ScoreOptions, Selection

    cli = dict(cli)
    if cli["address"] is not None and cli["engine"] != "ray":
        raise click.UsageError("--address is only used with --engine ray.")
    timeout, progress = cli.pop("timeout"), not cli.pop("quiet")
    selection = Selection(cli.pop("include"), cli.pop("exclude"), cli.pop("manifest"),
                          cli.pop("path_column"))
    return ScoreOptions(**cli, selection=selection, progress=progress,
                        **({} if timeout is None else {"timeout": timeout or None}))


def run_score_command(model: Any, inputs: str, out: str, options: Any) -> None:
    """Score, print the summary, exit with EXIT_PARTIAL when some inputs failed and with
    EXIT_INTERRUPTED (the table resumable) on Ctrl-C or SIGTERM, within seconds
    (`interrupts.interruptible`)."""
    from toolkit_deploy.interrupts import exit_interrupted, interruptible
    from toolkit_deploy.score import score_with

    resume_hint = (f"the rows scored so far are kept in {out}.partial; run the same command "
                   "with --resume to finish it.")
    with interruptible(EXIT_INTERRUPTED, resume_hint) as interrupted:
        try:
            summary = score_with(model, inputs, out, options)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: {resume_hint}", err=True)
            exit_interrupted(interrupted, EXIT_INTERRUPTED,
                             keep_interpreter=options.engine == "ray")
    click.echo(summary.describe(), err=True)
    if summary.n_failed:
        sys.exit(EXIT_PARTIAL)


@main.command(help="Score every file under INPUT (a folder, recursive, sorted; or one file) "
                   "with MODEL.\n" + SCORE_HELP)
@click.argument("model", type=click.Path(dir_okay=False))
@score_options()
@library_errors
def score(model: str, inputs: str, out: str, **options: Any) -> None:
    run_score_command(model, inputs, out, cli_score_options(options))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@library_errors
def inspect(model: str, as_json: bool) -> None:
    """Show what MODEL says about itself: labels, inputs, outputs, preprocessing, parity."""
    from toolkit_deploy.info import describe, for_terminal

    info = describe(model)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    info = for_terminal(info)  # the file's strings, shown to a person: no escape sequences
    click.echo(f"{info['path']}  ({info['size_bytes']} bytes, opset {info['opset']}, "
               f"format {info['format_version']})")
    click.echo(f"modality   {info['modality']}")
    click.echo(f"labels     {', '.join(info['labels'])}")
    if info.get("task") == "multilabel":
        click.echo("task       multilabel (sigmoid per label), thresholds "
                   + ", ".join(f"{t:.3f}" for t in info["thresholds"]))
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            click.echo(f"{kind[:-1]:<10} {t['name']}: {t['dtype']} {t['shape']}")
    click.echo(f"preprocess {json.dumps(info['preprocess'])}")
    parity = info["parity"]
    if parity:
        from toolkit_deploy.spec import ParityReport

        click.echo(ParityReport.from_dict(parity).summary(
            "label-set" if info.get("task") == "multilabel" else "top-1"))
    from toolkit_deploy.info import variant_lines

    for line in variant_lines(info["variant"]):
        click.echo(line)
    prov = info["provenance"]
    recipe = prov.get("recipe", {})
    click.echo(f"recipe     {recipe.get('name', '?')}  (the full recipe: inspect --json)")
    fingerprint = prov.get("data_fingerprint") or "?"
    click.echo(f"data       sha256 {fingerprint[:16]}…  run {prov.get('run', '?')}")
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())
    click.echo(f"made by    {versions}  on {prov.get('exported', '?')}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json: bool) -> None:
    """Check this environment: Python, toolkit, ONNX Runtime and decoder library versions, and
    which execution providers are available and really usable (a session is created on each).

    Exit code 1 when something stops models from running, e.g. onnxruntime and onnxruntime-gpu
    installed together.
    """
    from toolkit_deploy.doctor import diagnose

    diagnosis = diagnose()
    click.echo(json.dumps(diagnosis.to_dict(), indent=2) if as_json else diagnosis.describe())
    if not diagnosis.ok:
        sys.exit(EXIT_FATAL)


@main.command()
@click.argument("target", metavar="MODEL_OR_RUN", type=click.Path(exists=True))
@click.option("--data", required=True, type=click.Path(exists=True),
              help="Labelled folder DIR/<class>/<file> (or DIR/test/<class>/… for split data); "
                   "for text models also a .csv/.jsonl table with text and label columns.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Split of a split dataset  [default: test, else val]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@batch_option
@workers_option
@threads_option
@device_option()
@text_column_option
@click.option("--label-column", default="label", show_default=True,
              help="Column (or JSON key) holding the label in a .csv/.jsonl table.")
@encoding_option
@click.option("--perturb", multiple=True, metavar="NAME[:STRENGTH]",
              help="Also measure accuracy under a corruption applied after decoding, repeatable; "
                   "`all` for every one of the model's modality. Image: gaussian_noise, blur, "
                   "brightness, jpeg; audio: noise, gain, shift; text: typos, word_dropout; "
                   "video: frame_drop, noise.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the corruptions (same seed, same corrupted inputs).")
@click.option("--report", type=click.Path(file_okay=False),
              help="Also write a self-contained HTML report (metrics, confusion matrix, "
                   "robustness, the worst misclassified inputs) into this folder.")
@library_errors
def evaluate(target: str, data: str, split: str | None, as_json: bool, batch_size: int,
             workers: int | None, threads: int | None, device: str, text_column: str,
             label_column: str, encoding: str | None, perturb: tuple[str, ...],
             seed: int, report: str | None) -> None:
    """Measure MODEL_OR_RUN (a .onnx file, or a training run folder) on labelled data.

    Prints accuracy, macro/weighted F1, per-class precision/recall/F1 and the confusion matrix.
    A .onnx file needs only the runtime; a run folder needs the training stack.
    """
    from pathlib import Path

    from toolkit_deploy.evaluate import EvalOptions

    options = EvalOptions(split=split, batch_size=batch_size, workers=workers,
                          progress=not as_json, text_column=text_column,
                          label_column=label_column, encoding=encoding, perturb=perturb,
                          seed=seed, report=report)
    if Path(target).is_dir():
        from toolkit_deploy.plugins import run_folder_hook

        evaluate_run = run_folder_hook("evaluate", "Evaluating a run folder",
                                       " Or evaluate its exported .onnx file.")
        result = evaluate_run(target, data, options, device=device)
    else:
        from toolkit_deploy.evaluate import evaluate_with
        from toolkit_deploy.predictor import as_predictor

        result = evaluate_with(as_predictor(target, device, threads, encoding), data, options)
    print_evaluation(result, as_json)


@main.command()
@click.argument("targets", metavar="RUN_OR_MODEL...", nargs=-1, required=True,
                type=click.Path(exists=True))
@click.option("--data", type=click.Path(exists=True),
              help="Evaluate every target on this labelled data  [default: show the figures "
                   "each one recorded]")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None,
              help="Split of a split dataset  [default: test, else val]")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list.")
@batch_option
@device_option()
@library_errors
def compare(targets: tuple[str, ...], data: str | None, split: str | None, as_json: bool,
            batch_size: int, device: str) -> None:
    """Show the figures of several runs and model files side by side (e.g. fp32 vs int8, or the
    trials of a sweep).

    Without --data, each target's recorded figures: a run's final held-out figures, a model's
    (those of the run it was exported from) and its parity. With --data, every target is
    evaluated on the same data (run folders need the training stack).
    """
    from pathlib import Path

    from toolkit_deploy.compare import comparison_row, format_comparison, model_figures
    from toolkit_deploy.evaluate import EvalOptions, evaluate_with
    from toolkit_deploy.plugins import run_folder_hook
    from toolkit_deploy.predictor import as_predictor

    options = EvalOptions(split=split, batch_size=batch_size)
    rows = []
    for target in targets:
        if Path(target).is_dir() and data is None:
            figures = run_folder_hook("figures", "Reading a run folder's figures")(target)
        elif Path(target).is_dir():
            evaluate_run = run_folder_hook("evaluate", "Evaluating a run folder")
            figures = evaluate_run(target, data, options, device=device)
        elif data is None:
            figures = model_figures(target)
        else:
            figures = evaluate_with(as_predictor(target, device, None, None), data, options)
        rows.append(comparison_row(target, figures))
    click.echo(json.dumps(rows, indent=2, ensure_ascii=False) if as_json
               else format_comparison(rows))


def print_evaluation(result: dict[str, Any], as_json: bool) -> None:
    from toolkit_deploy.metrics import format_metrics

    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    split = f" ({result['split']} split)" if result.get("split") else ""
    click.echo(f"{result['model']} on {result['data']}{split}")
    click.echo(format_metrics(result))
    if result.get("robustness"):
        click.echo("\nrobustness (accuracy under corruption; drop from the clean accuracy)")
        for r in result["robustness"]:
            click.echo(f"  {r['perturbation']:<15} {r['strength']:>8g} {r['unit']:<28} "
                       f"accuracy {r['accuracy']:.4f}   drop {r['drop']:+.4f}")
    if result.get("report"):
        click.echo(f"\nreport written to {result['report']}")
    if result["n_failed"]:
        click.echo(f"\n{result['n_failed']} files could not be read and are not counted:")
        for err in result["errors"][:10]:
            click.echo(f"  {err['path']}: {err['error']}")
