"""Batch scoring: a folder (or one file) in, one predictions table (CSV or JSONL) out.

For text models a `.txt`, `.csv` or `.jsonl` file is a table of texts: one row per line or record,
with its `id` (the table's id column, else the line number) beside `path`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from toolkit_deploy import tables
from toolkit_deploy.errors import DecodeError
from toolkit_deploy.files import list_files, select, sha256_of
from toolkit_deploy.locking import output_lock
from toolkit_deploy.names import BATCH_SIZE
from toolkit_deploy.pathtext import path_from_text, path_text
from toolkit_deploy.pipeline import DEFAULT_TIMEOUT, Prediction, predict_files
from toolkit_deploy.predictor import Predictor, as_predictor
from toolkit_deploy.tablewriter import FORMATS, TableWriter, partial_paths
from toolkit_deploy.writing import stage_text


@dataclass(frozen=True)
class ScoreSummary:
    """What a scoring run did.

    Attributes:
        n_files: Inputs found (files, or the texts of a table).
        n_scored: Inputs scored.
        n_failed: Inputs that became error rows.
        seconds: Wall time of the run (model loading excluded).
        output: The predictions table.
        ignored: Files under the input that were not inputs ('' if none).
        device: Device the model ran on.
        already_complete: `resume` found this run's table finished; nothing was scored (the
            other figures are the finished run's).
    """

    n_files: int
    n_scored: int
    n_failed: int
    seconds: float
    output: str
    ignored: str
    device: str
    already_complete: bool = False

    @property
    def files_per_second(self) -> float:
        return self.n_files / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "files_per_second": self.files_per_second}
        del data["already_complete"]
        return data

    def describe(self) -> str:
        if self.already_complete:
            return (f"{self.output} is already complete ({self.n_scored}/{self.n_files} inputs "
                    f"scored, {self.n_failed} failed); nothing to resume")
        text = (
            f"scored {self.n_scored}/{self.n_files} inputs, {self.n_failed} failed, in "
            f"{self.seconds:.2f} s ({self.files_per_second:.1f}/s, {self.device}) "
            f"→ {self.output}"
        )
        return f"{text}\n{self.ignored}" if self.ignored else text


def columns(top_k: int, keys: tuple[str, ...] = ("path",),
            labels: tuple[str, ...] = (), multilabel: bool = False) -> list[str]:
    """Columns of a predictions table: `keys` (path, or path and id for tables of texts), the
    prediction, for a multi-label model its label set (`labels`), `top_k` extra label/score
    pairs, and `prob_<label>` for each of `labels`."""
    extra = [c for k in range(1, top_k + 1) for c in (f"top{k}_label", f"top{k}_score")]
    sets = ["labels"] if multilabel else []
    return [*keys, "label", "score", *sets, "error", *extra,
            *(f"prob_{label}" for label in labels)]


def prediction_row(
    prediction: Prediction, keys: dict[str, str], labels: tuple[str, ...], top_k: int,
    probs: bool = False, thresholds: tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """One table row, starting with `keys` (e.g. {'path': ...}); an error row has empty label
    and scores. With `probs`, every class's probability (`prob_<label>`). With `thresholds` (a
    multi-label model), `labels` is the label set, joined by `labelsets.SEPARATOR`; `label` and
    `score` stay the most probable label and its probability."""
    row: dict[str, Any] = {**keys, **dict.fromkeys(
        columns(top_k, (), labels if probs else (), thresholds is not None), "")}
    if prediction.probs is None:
        row["error"] = prediction.error
        return row
    p = prediction.probs
    order = p.argsort()[::-1]
    row["label"] = labels[order[0]]
    row["score"] = float(p[order[0]])
    if thresholds is not None:
        from toolkit_deploy.labelsets import join_labels, label_set

        row["labels"] = join_labels(label_set(p, thresholds, labels))
    for k, i in enumerate(order[:top_k], start=1):
        row[f"top{k}_label"] = labels[i]
        row[f"top{k}_score"] = float(p[i])
    if probs:
        row.update({f"prob_{label}": float(v) for label, v in zip(labels, p, strict=True)})
    return row


#: Where `score` runs: `local` (this process) or `ray` (Ray Data actors).
ENGINES = ("local", "ray")


def summary_path(out: Path) -> Path:
    """Where the summary of a scoring run that writes `out` goes."""
    return out.with_name(out.name + ".summary.json")


@dataclass(frozen=True)
class Selection:
    """Which inputs a folder or a manifest gives.

    Attributes:
        include: Globs on the path relative to INPUT; only matching files are scored.
        exclude: Globs on the same; matching files are not scored.
        manifest: INPUT lists the paths to score (relative to its folder): a .txt file with one
            per line, or a .csv / .jsonl table with a `path_column`.
        path_column: The manifest's column of paths.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    manifest: bool = False
    path_column: str = "path"


@dataclass(frozen=True)
class ScoreOptions:
    """How `score_with` scores: the keyword arguments of `score`, of the same names and defaults,
    built once (by `score`, or by the CLI from its options) and passed down whole."""

    top_k: int = 0
    batch_size: int = BATCH_SIZE
    workers: int | None = None
    device: str = "cpu"
    threads: int | None = None
    overwrite: bool = False
    progress: bool = True
    text_column: str = "text"
    id_column: str | None = None
    encoding: str | None = None
    probs: bool = False
    resume: bool = False
    selection: Selection = Selection()
    engine: str = "local"
    address: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    csv_safe: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown engine {self.engine!r}; valid engines: "
                             f"{', '.join(ENGINES)}.")
        if self.address is not None and self.engine != "ray":
            raise ValueError(f"An address ({self.address!r}) is only used by the ray engine; pass "
                             "--engine ray (engine='ray') with it, or drop it.")

    def recorded(self) -> dict[str, Any]:
        """The options the rows depend on (a table resumed under other ones would mix rows), as
        the summary and the run's fingerprint record them."""
        recorded = {"top_k": self.top_k, "probs": self.probs, "text_column": self.text_column,
                    "id_column": self.id_column, "encoding": self.encoding}
        if self.csv_safe:  # a table resumed with and without it would mix escaped and raw rows
            recorded["csv_safe"] = True
        return recorded


_DEFAULT = ScoreOptions()


def score(
    model: Predictor | str | os.PathLike,
    inputs: str | os.PathLike,
    out: str | os.PathLike,
    *,
    top_k: int = _DEFAULT.top_k,
    batch_size: int = _DEFAULT.batch_size,
    workers: int | None = _DEFAULT.workers,
    device: str = _DEFAULT.device,
    threads: int | None = _DEFAULT.threads,
    overwrite: bool = _DEFAULT.overwrite,
    progress: bool = _DEFAULT.progress,
    text_column: str = _DEFAULT.text_column,
    id_column: str | None = _DEFAULT.id_column,
    encoding: str | None = _DEFAULT.encoding,
    probs: bool = _DEFAULT.probs,
    resume: bool = _DEFAULT.resume,
    selection: Selection | None = None,
    engine: str = _DEFAULT.engine,
    address: str | None = _DEFAULT.address,
    timeout: float | None = _DEFAULT.timeout,
    csv_safe: bool = _DEFAULT.csv_safe,
) -> ScoreSummary:
    """Score every input file under `inputs` and write one row per file to `out`.

    Files are found recursively and sorted; `path` in the table is relative to `inputs` when it is
    a folder. A file that cannot be decoded becomes a row with its `error`; the run goes on.
    For a text model, `inputs` may also be a `.txt` / `.csv` / `.jsonl` table of texts: one row
    per line or record, with an `id` column.

    Args:
        model: A `Predictor` or the path of a model file.
        inputs: A folder or a single file.
        out: `.csv`, `.jsonl` or `.parquet` (pyarrow) predictions table. A summary of the run
            is written beside it, as `<out>.summary.json`.
        top_k: Add the K most probable labels and their probabilities as columns.
        batch_size: Files per ONNX Runtime call (the default is best or within noise of it for
            every modality on 2 cores: benchmarks/defaults.py).
        workers: Decoding threads, or processes for video (default: available cores); Ray
            actors with `engine="ray"`.
        device: `cpu`, `cuda` or `auto` (when `model` is a path).
        threads: ONNX Runtime intra-op threads (when `model` is a path).
        overwrite: Replace an existing `out`.
        progress: Show a progress bar on stderr (when it is a terminal).
        text_column: Column holding the text in a .csv/.jsonl table of texts.
        id_column: Column holding the row id (default `id` when present, else the line number).
        encoding: Encoding of text files (default UTF-8, with or without BOM).
        probs: Add every class's probability as a column `prob_<label>`.
        resume: Continue the table an interrupted run with the same model, inputs and options
            left (`<out>.partial`); its committed rows are kept, the rest are scored. On a
            finished table of the same run (its summary's fingerprint and sha256 match), a
            no-op that returns that run's summary (`already_complete`).
        selection: `--include` / `--exclude` globs, or INPUT as a manifest of paths.
        engine: `local` (this process: decoding threads or processes, one session) or `ray`
            (Ray Data actors, one session each: `toolkit_deploy.ray_score`; `workers` is then
            the number of actors).
        address: With `engine="ray"`, the Ray cluster to join (e.g. `ray://head:10001`);
            default: the Ray already started in this process, else a local one.
        timeout: Seconds an input may take to decode before it becomes a `DecodeTimeout` error
            row (a video's worker process is killed, a stuck decoding thread left behind); None:
            no limit (`pipeline.predict_files`; the local engine).
        csv_safe: Prefix cells and column names that a spreadsheet would run as a formula
            (starting with =, +, -, @, tab or CR) with a single quote (`toolkit_deploy.csvsafe`);
            CSV output only.

    Raises:
        FileExistsError: `out` exists and `overwrite` is False (with `resume`: and it is not this
            run's finished table), or an interrupted run's partial table is there and neither
            `resume` nor `overwrite` is given.
        OutputInUseError: Another run is writing `out` (it holds `<out>.lock`).
        ValueError: `out` has an unsupported extension, `top_k` is out of range, `engine` is
            unknown, or `address` is given with the local engine.
        OutputError: The table or its summary cannot be written (a full disk, a folder that is
            not writable); an earlier table at `out` is left as it was.
    """
    return score_with(model, inputs, out, ScoreOptions(
        top_k=top_k, batch_size=batch_size, workers=workers, device=device, threads=threads,
        overwrite=overwrite, progress=progress, text_column=text_column, id_column=id_column,
        encoding=encoding, probs=probs, resume=resume, selection=selection or Selection(),
        engine=engine, address=address, timeout=timeout, csv_safe=csv_safe))


def score_with(model: Predictor | str | os.PathLike, inputs: str | os.PathLike,
               out: str | os.PathLike, options: ScoreOptions) -> ScoreSummary:
    """`score` with its options built (`ScoreOptions`): check the destination, list the inputs,
    then write the rows (or, resuming a finished table of the same run, confirm it)."""
    out = check_destination(out, options)
    with output_lock(out):  # held to the end: a second run on `out` is refused, not interleaved
        finished = _check_existing(out, options)
        predictor = as_predictor(model, options.device, options.threads, options.encoding)
        if options.engine == "local" and getattr(predictor.decoder, "isolate", False):
            from toolkit_deploy.pipeline import check_spawnable_main

            check_spawnable_main()  # before any file is made
        if not 0 <= options.top_k <= len(predictor.labels):
            raise ValueError(f"top_k must be in [0, {len(predictor.labels)}]. "
                             f"Got {options.top_k}.")
        inputs = Path(inputs)
        sources, keys, ignored = _inputs(predictor, inputs, options)
        fingerprint = _fingerprint(predictor, inputs, sources, keys, options.recorded())
        if finished:
            return _finished(out, fingerprint)
        return _write(predictor, inputs, out, sources, keys, ignored, fingerprint, options)


def check_destination(out: str | os.PathLike, options: ScoreOptions) -> Path:
    """`out` as a Path, refused before anything is made when it cannot be written as asked."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ValueError(
            f"Output {out} has an unsupported extension; expected one of {', '.join(FORMATS)}."
        )
    if options.csv_safe and out.suffix.lower() != ".csv":
        raise ValueError(f"--csv-safe (csv_safe=True) escapes spreadsheet formulas in .csv "
                         f"tables; {out.name} is {out.suffix} and needs no escaping. Drop it.")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"Output folder {out.parent} does not exist; create it first.")
    if options.engine == "ray":
        from toolkit_deploy.ray_score import ray_module

        ray_module()  # before any file is made: without Ray, nothing is left behind
    return out


def _check_existing(out: Path, options: ScoreOptions) -> bool:
    """Refuse what is at `out` unless the options allow it; whether `out` is a finished table
    that --resume is to confirm (checked against the run's fingerprint once the model and the
    inputs are known)."""
    sidecar = summary_path(out)
    partial = partial_paths(out)[0]
    finished = (options.resume and not options.overwrite and out.exists()
                and not os.path.lexists(partial))
    for existing in (out, sidecar):
        if existing.exists() and not (options.overwrite or finished):
            raise FileExistsError(
                f"Output {existing} already exists; pass --overwrite (overwrite=True) to "
                "replace it, or choose another path."
            )
    if os.path.lexists(partial) and not (options.resume or options.overwrite):
        raise FileExistsError(
            f"An interrupted run left {partial}; pass --resume to continue it, or "
            "--overwrite to start again."
        )
    return finished


def _open_stream(predictor: Predictor, sources: list[Any], options: ScoreOptions) -> Any:
    """The predictions of `sources`, in any order, each with its index: decoded and run here
    (`pipeline.predict_files`) or by Ray actors (`ray_score`)."""
    if options.engine == "local":
        return predict_files(predictor, sources, options.batch_size, options.workers,
                             timeout=options.timeout)
    from toolkit_deploy.ray_score import ray_predictions

    return ray_predictions(predictor, sources, options.batch_size, options.workers,
                           options.address, options.threads,
                           {"encoding": options.encoding} if options.encoding else {})


def _write(predictor: Predictor, inputs: Path, out: Path, sources: list[Any],
           keys: list[dict[str, str]], ignored: str, fingerprint: str,
           options: ScoreOptions) -> ScoreSummary:
    """Score `sources` into the table at `out` and its summary."""
    from tqdm import tqdm

    started = time.perf_counter()
    thresholds = predictor.spec.thresholds if predictor.spec.multilabel else None
    table_fields = columns(options.top_k, tuple(keys[0]) if keys else ("path",),
                           predictor.labels if options.probs else (), thresholds is not None)
    if options.csv_safe:
        from toolkit_deploy.csvsafe import csv_safe as safe_cell
        from toolkit_deploy.csvsafe import csv_safe_row

        table_fields = [safe_cell(f) for f in table_fields]
    writer = TableWriter(out, table_fields, fingerprint, options.resume, len(sources))
    skip = writer.done
    stream = None
    try:
        stream = _open_stream(predictor, sources[skip:], options)
        bar = tqdm(
            stream, total=len(sources), initial=skip, unit="input", desc="score",
            file=sys.stderr, disable=None if options.progress else True,
        )
        for prediction in bar:
            row = prediction_row(prediction, keys[skip + prediction.index], predictor.labels,
                                 options.top_k, options.probs, thresholds)
            if options.csv_safe:
                row = csv_safe_row(row)
            writer.write(row, prediction.probs is None)
        failed = writer.failed
        summary = ScoreSummary(
            n_files=len(sources),
            n_scored=len(sources) - failed,
            n_failed=failed,
            seconds=time.perf_counter() - started,
            output=path_text(str(out)),
            ignored=ignored,
            device=predictor.device,
        )
        writer.finish()
        # The summary is staged before the table is moved into place and replaces the earlier
        # one after it, so that a failure (a full disk) leaves the earlier table and summary,
        # and a resumable partial table. It records the table's sha256, which --resume on a
        # finished table checks.
        staged = stage_text(summary_path(out), json.dumps({
            **summary.to_dict(), "model": path_text(str(predictor.path)),
            "inputs": path_text(str(inputs)),
            "options": {**options.recorded(), "batch_size": options.batch_size},
            "fingerprint": fingerprint,
            "table_sha256": writer.sha256, "resumed_after": skip,
        }, indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        writer.abort()
        if stream is not None:
            stream.close()  # stop the decoders now (a worker stuck on an input is killed)
        raise
    try:
        writer.commit()
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, summary_path(out))
    return summary


def _finished(out: Path, fingerprint: str) -> ScoreSummary:
    """--resume on a finished table: its summary, when it is this very run's table (same model,
    inputs and options, no input changed, the table as written); a no-op."""
    sidecar = summary_path(out)
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint:
        raise FileExistsError(
            f"Output {out} is a finished table, but {sidecar} does not record this run: another "
            "model, other inputs or options, or an input file changed since. --resume only "
            "finishes or confirms a table of the same run; pass --overwrite to score again, or "
            "choose another path.")
    if recorded.get("table_sha256") != sha256_of(out):
        raise FileExistsError(
            f"Output {out} was changed after its run finished (its sha256 is not the one in "
            f"{sidecar}); pass --overwrite to score again.")
    try:
        return ScoreSummary(**{f.name: recorded[f.name] for f in fields(ScoreSummary)
                               if f.name != "already_complete"}, already_complete=True)
    except (KeyError, TypeError) as e:
        raise FileExistsError(f"{sidecar} is not a summary of this run ({e}); pass --overwrite "
                              "to score again.") from e


def _stamp(path: Path) -> list[int] | None:
    """Size and modification time of an input file (None when it cannot be read): a file
    changed under the same name changes the run's fingerprint, without reading every input."""
    try:
        status = path.stat()
    except (OSError, ValueError):
        return None
    return [status.st_size, status.st_mtime_ns]


def _fingerprint(predictor: Predictor, inputs: Path, sources: list[Any],
                 keys: list[dict[str, str]], options: dict[str, Any]) -> str:
    """sha256 of what the rows depend on: the model file, the inputs in order (with the size
    and modification time of each file, and of INPUT when it is a table or manifest), the
    options."""
    import hashlib

    digest = hashlib.sha256(sha256_of(predictor.path).encode())
    digest.update(json.dumps(keys, ensure_ascii=False).encode())
    stamps = [_stamp(s) for s in sources if isinstance(s, Path)]
    digest.update(json.dumps([_stamp(inputs) if inputs.is_file() else None, stamps]).encode())
    digest.update(json.dumps(options, sort_keys=True).encode())
    return digest.hexdigest()


def is_text_table(predictor: Predictor, inputs: Path) -> bool:
    """Whether `inputs` is a file of many texts for a text model (rather than one input)."""
    return (predictor.modality == "text" and inputs.is_file()
            and inputs.suffix.lower() in tables.EXTENSIONS)


def _inputs(predictor: Predictor, inputs: Path,
            options: ScoreOptions) -> tuple[list[Any], list[dict], str]:
    """The sources to score, the key columns of each one's row, and what was ignored."""
    selection, encoding = options.selection, options.encoding
    text_column, id_column = options.text_column, options.id_column
    if selection.manifest:
        if not inputs.is_file():
            raise ValueError(f"--manifest needs INPUT to be a .txt, .csv or .jsonl file listing "
                             f"paths. Got {inputs}.")
        rows = tables.read_table(inputs, text_column=selection.path_column, encoding=encoding)
        base = inputs.parent
        # A manifest's paths may be a predictions table's, quoted (`pathtext`).
        named = [path_from_text(r.text.strip()) if r.text is not None else None for r in rows]
        sources = [base / n if n is not None else DecodeError(r.error)
                   for n, r in zip(named, rows, strict=True)]
        return sources, [{"path": path_text(n or "")} for n in named], ""
    if is_text_table(predictor, inputs):
        rows = tables.read_table(inputs, text_column=text_column, id_column=id_column,
                                 encoding=encoding)
        sources = [r.text if r.text is not None else DecodeError(r.error)
                   for r in rows]
        return sources, [{"path": path_text(inputs.name), "id": r.id} for r in rows], ""
    listing = select(list_files(inputs, predictor.decoder.extensions), selection.include,
                     selection.exclude)
    # A folder that cannot be listed is an error row in its place (its files are not lost
    # silently), so the run's exit code says that some inputs failed.
    entries = sorted([(listing.relative(p), p) for p in listing.files]
                     + [(listing.relative(f), DecodeError(why)) for f, why in listing.unlisted],
                     key=lambda entry: entry[0])
    keys = [{"path": path_text(rel)} for rel, _ in entries]
    return [source for _, source in entries], keys, listing.describe_ignored()
