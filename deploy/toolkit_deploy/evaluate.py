"""Evaluation of a model file on a labelled folder, without torch."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit_deploy import tables
from toolkit_deploy.dataset import find_splits, read_labelled
from toolkit_deploy.errors import DatasetError, DecodeError
from toolkit_deploy.metrics import classification_metrics
from toolkit_deploy.names import BATCH_SIZE
from toolkit_deploy.pathtext import path_text
from toolkit_deploy.perturb import Perturbation, PerturbedDecoder, parse_perturbations
from toolkit_deploy.pipeline import Model, predict_files
from toolkit_deploy.predictor import Predictor, as_predictor


def resolve_eval_folder(data: str | os.PathLike, split: str | None = None) -> tuple[Path, str]:
    """The class folder to evaluate on, and the split it is ('' for a plain labelled folder).

    For a split dataset (`DIR/train|val|test/<class>/…`) the default is `test`, else `val`.
    """
    data = Path(data)
    splits = find_splits(data)
    if split is not None:
        if split not in splits:
            raise DatasetError(
                f"--split {split} asked for, but {data} has splits {sorted(splits) or 'none'}."
            )
        return splits[split], split
    if not splits:
        return data, ""
    for name in ("test", "val"):
        if name in splits:
            return splits[name], name
    raise DatasetError(
        f"{data} has only a train split; evaluating on training data says little. Add "
        f"{data}/test/<class>/… or pass --split train explicitly."
    )


@dataclass(frozen=True)
class EvalOptions:
    """How a model is measured on labelled data: the keyword arguments of `evaluate` (and of the
    training stack's `evaluate_run`) but the model's own (device, threads, weights), of the same
    names and defaults, built once and passed down whole to `evaluate_with`.

    Attributes:
        split: Split of a split dataset (default: test, else val).
        batch_size: Inputs per model call.
        workers: Decoding threads, or processes for video (default: available cores).
        progress: Show a progress bar on stderr (when it is a terminal).
        text_column: Column (or JSON key) holding the text in a .csv/.jsonl table.
        label_column: Column (or JSON key) holding the label in the same.
        encoding: Encoding of text files (default UTF-8, with or without BOM).
        perturb: Corruptions to also measure accuracy under (`name[:strength]`, `all`).
        seed: Seed of the corruptions.
        report: Folder to write a self-contained HTML report into.
    """

    split: str | None = None
    batch_size: int = BATCH_SIZE
    workers: int | None = None
    progress: bool = False
    text_column: str = "text"
    label_column: str = "label"
    encoding: str | None = None
    perturb: tuple[str, ...] = ()
    seed: int = 0
    report: str | os.PathLike | None = None


_DEFAULT = EvalOptions()


def evaluate(
    model: Predictor | str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = _DEFAULT.split,
    batch_size: int = _DEFAULT.batch_size,
    workers: int | None = _DEFAULT.workers,
    device: str = "cpu",
    threads: int | None = None,
    progress: bool = _DEFAULT.progress,
    text_column: str = _DEFAULT.text_column,
    label_column: str = _DEFAULT.label_column,
    encoding: str | None = _DEFAULT.encoding,
    perturb: tuple[str, ...] = _DEFAULT.perturb,
    seed: int = _DEFAULT.seed,
    report: str | os.PathLike | None = _DEFAULT.report,
) -> dict[str, Any]:
    """Accuracy, F1, per-class figures and confusion matrix of a model file on a labelled folder
    (or, for a text model, a labelled `.csv` / `.jsonl` table).

    Files that fail to decode are not counted in the metrics; they are listed under `errors`.
    `device` and `threads` are the model's (when `model` is a path); the other arguments are
    `EvalOptions`'.

    Returns:
        `classification_metrics` plus `model`, `data`, `split`, `n_failed`, `errors`.
    """
    options = EvalOptions(split=split, batch_size=batch_size, workers=workers,
                          progress=progress, text_column=text_column, label_column=label_column,
                          encoding=encoding, perturb=perturb, seed=seed, report=report)
    return evaluate_with(as_predictor(model, device, threads, encoding), data, options)


def labelled_inputs(
    data: Path, extensions: tuple[str, ...], labels: tuple[str, ...], *,
    text_column: str = "text", label_column: str = "label", encoding: str | None = None,
) -> tuple[list[Any], list[int], list[str]]:
    """Sources, target indices and display names of a labelled folder or table of texts. A name
    is the path relative to `data`, as text (`pathtext`); a folder that cannot be listed is an
    error source (target -1), after the files.

    Raises:
        DatasetError: The data's labels are not among `labels`, or the layout is wrong.
    """
    if data.is_file():
        rows = tables.read_table(data, text_column=text_column, label_column=label_column,
                                 encoding=encoding)
        unknown = sorted({r.label for r in rows if r.label is not None} - set(labels))
        if unknown:
            raise DatasetError(
                f"{data} has labels {unknown[:10]} that are not labels of the model. Expected a "
                f"subset of {list(labels)}."
            )
        sources = [r.text if r.text is not None else DecodeError(r.error) for r in rows]
        targets = [labels.index(r.label) if r.label is not None else -1 for r in rows]
        return sources, targets, [path_text(f"{data.name}:{r.id}") for r in rows]
    dataset = read_labelled(data, extensions, labels)
    names = [path_text(p.relative_to(data).as_posix())
             for p in (*dataset.paths, *(f for f, _ in dataset.unlisted))]
    return ([*dataset.paths, *(DecodeError(why) for _, why in dataset.unlisted)],
            [*dataset.targets, *([-1] * len(dataset.unlisted))], names)


def evaluate_with(model: Model, data: str | os.PathLike,
                  options: EvalOptions = _DEFAULT) -> dict[str, Any]:
    """`evaluate` for anything with the `Predictor` interface (the training stack passes its
    PyTorch model this way, so both sides share decoding, batching and metrics).

    With `perturb` (`name[:strength]`, see `toolkit_deploy.perturb`), the data is also scored
    under each corruption, seeded by `seed`; `robustness` lists the accuracy and its drop. With
    `report`, an HTML report is written in that folder (`toolkit_deploy.report`)."""
    split, batch_size, workers = options.split, options.batch_size, options.workers
    perturb, seed, report = options.perturb, options.seed, options.report
    data = Path(data)
    if getattr(model, "multilabel", False):
        return _evaluate_label_sets(model, data, options)
    if data.is_file() and model.decoder.modality != "text":
        raise DatasetError(f"--data {data} is a file; a {model.decoder.modality} model is "
                           "evaluated on a labelled folder DIR/<class>/<file>.")
    folder, split_name = (data, "") if data.is_file() else resolve_eval_folder(data, split)
    sources, truth, names = labelled_inputs(
        folder, model.decoder.extensions, model.labels, text_column=options.text_column,
        label_column=options.label_column, encoding=options.encoding)

    from tqdm import tqdm

    targets, preds, probs, errors, wrong = [], [], [], [], []
    stream = predict_files(model, sources, batch_size, workers)
    for p in tqdm(stream, total=len(sources), desc="evaluate", unit="input", file=sys.stderr,
                  disable=None if options.progress else True):
        if p.probs is None:
            errors.append({"path": names[p.index], "error": p.error})
        else:
            targets.append(truth[p.index])
            preds.append(int(p.probs.argmax()))
            probs.append(p.probs)
            if preds[-1] != targets[-1]:
                wrong.append((-float(p.probs.max()), p.index, targets[-1], preds[-1]))
    if not targets:
        raise DatasetError(f"No file of {path_text(str(folder))} could be scored; first error: "
                           f"{errors[0]}.")
    clean = float(np.mean(np.asarray(preds) == np.asarray(targets)))
    robustness = [
        _robustness(model, p, strength, seed, sources, truth, batch_size, workers, clean)
        for p, strength in parse_perturbations(perturb, model.decoder.modality)]
    result = {
        "model": path_text(str(model.path)),
        "data": path_text(str(folder)),
        "split": split_name,
        **classification_metrics(targets, preds, model.labels, np.stack(probs)),
        "n_failed": len(errors),
        "errors": errors,
        **({"robustness": robustness} if perturb else {}),
    }
    if report is not None:
        from toolkit_deploy.report import WORST, render, write_report

        decoder = model.decoder
        worst = []
        for confidence, index, true, predicted in sorted(wrong)[:WORST]:
            text = decoder.read(sources[index]) if decoder.modality == "text" else None
            decoded = None if text is not None else decoder(sources[index])
            worst.append({"name": names[index], "true": model.labels[true],
                          "predicted": model.labels[predicted], "confidence": -confidence,
                          "html": render(decoder.modality, decoded, text)})
        result["report"] = path_text(str(write_report(result, worst, decoder.modality, report)))
    return result


def resolve_label_table(data: Path, split: str | None = None) -> tuple[Path, str]:
    """The multi-label table to evaluate on: `data` itself, or the `test` (else `val`, or
    `split`) table of a folder of split tables (`train.csv`, `val.csv`, `test.csv`)."""
    from toolkit_deploy.labelsets import find_table_splits

    if data.is_file():
        return data, ""
    tables_ = find_table_splits(data)
    if split is not None:
        if split not in tables_:
            raise DatasetError(f"--split {split} asked for, but {data} has split tables "
                               f"{sorted(tables_) or 'none'}.")
        return tables_[split], split
    for name in ("test", "val"):
        if name in tables_:
            return tables_[name], name
    raise DatasetError(f"{data} is not a multi-label table, nor a folder with test.csv / "
                       "val.csv (or .jsonl) tables; a multi-label model is evaluated on a table "
                       "with a path (or text) column and a labels column.")


def _evaluate_label_sets(model: Model, data: Path, options: EvalOptions) -> dict[str, Any]:
    """`evaluate_with` for a multi-label model: its thresholds make each input's label set."""
    from tqdm import tqdm

    from toolkit_deploy import labelsets
    from toolkit_deploy.metrics import multilabel_metrics

    if options.perturb:
        raise ValueError("--perturb measures single-label accuracy; it is not available for "
                         "multi-label models yet.")
    table, split_name = resolve_label_table(data, options.split)
    text = model.decoder.modality == "text"
    labels_column = (labelsets.LABELS_COLUMN if options.label_column == _DEFAULT.label_column
                     else options.label_column)
    rows = labelsets.read_label_table(
        table, options.text_column if text else labelsets.PATH_COLUMN, labels_column,
        options.encoding, relative_paths=not text)
    labelsets.check_known(model.labels, rows, str(table), "the model's labels")
    sources = [Path(r.input) if r.input is not None and not text else
               (r.input if r.input is not None else DecodeError(r.error)) for r in rows]
    names = [f"{table.name}:{r.id}" for r in rows]
    thresholds = model.thresholds
    kept, probs, errors = [], [], []
    for p in tqdm(predict_files(model, sources, options.batch_size, options.workers),
                  total=len(sources), desc="evaluate", unit="input", file=sys.stderr,
                  disable=None if options.progress else True):
        if p.probs is None:
            errors.append({"path": names[p.index], "error": p.error})
        else:
            kept.append(p.index)
            probs.append(p.probs)
    if not kept:
        raise DatasetError(f"No input of {path_text(str(table))} could be scored; first error: "
                           f"{errors[0]}.")
    order = np.argsort(kept)
    kept, probs = [kept[i] for i in order], np.stack(probs)[order]
    truth = labelsets.multi_hot(model.labels, [rows[i].labels for i in kept])
    pred = labelsets.decide(probs, thresholds)
    result = {
        "model": path_text(str(model.path)), "data": path_text(str(table)), "split": split_name,
        **multilabel_metrics(truth, pred, model.labels, probs),
        "thresholds": [float(t) for t in thresholds],
        "n_failed": len(errors), "errors": errors,
    }
    if options.report is not None:
        from toolkit_deploy.report import WORST, render, write_report

        decoder = model.decoder
        wrongness = np.abs(probs - truth).sum(1) * (pred != truth).any(1)
        worst = []
        for j in np.argsort(-wrongness, kind="stable")[:WORST]:
            if wrongness[j] == 0:
                break
            source = sources[kept[j]]
            shown = decoder.read(source) if text else None
            worst.append({
                "name": names[kept[j]],
                "true": labelsets.join_labels(rows[kept[j]].labels) or "(none)",
                "predicted": labelsets.join_labels(
                    [x for x, k in zip(model.labels, pred[j], strict=True) if k]) or "(none)",
                "confidence": float(np.abs(probs[j] - truth[j]).max()),
                "html": render(decoder.modality, None if text else decoder(source), shown)})
        result["report"] = path_text(str(write_report(result, worst, decoder.modality,
                                                      options.report)))
    return result


class _Perturbed:
    """A model whose decoder corrupts what it decodes."""

    def __init__(self, model: Model, decoder: PerturbedDecoder) -> None:
        self.model, self.decoder = model, decoder
        self.labels, self.path = model.labels, model.path

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.model.run(batch)


def _robustness(model: Model, perturbation: Perturbation, strength: float, seed: int,
                sources: list[Any], truth: list[int], batch_size: int, workers: int | None,
                clean: float) -> dict[str, Any]:
    """Accuracy under one corruption (inputs that fail to decode are not counted, as clean)."""
    perturbed = _Perturbed(model, PerturbedDecoder(model.decoder, perturbation, strength, seed))
    hits = [int(p.probs.argmax()) == truth[p.index]
            for p in predict_files(perturbed, sources, batch_size, workers)
            if p.probs is not None]
    accuracy = float(np.mean(hits)) if hits else 0.0
    return {"perturbation": perturbation.name, "strength": strength, "unit": perturbation.unit,
            "accuracy": accuracy, "drop": clean - accuracy, "n_samples": len(hits)}
