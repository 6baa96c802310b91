"""The run folder: everything a training run leaves, and rebuilding its model from it alone.

    RUN/recipe.toml              the resolved recipe
    RUN/labels.json              class names in output order
    RUN/split.json               the files of each split (relative to the data folder)
    RUN/weights/best.safetensors weights of the best validation epoch
    RUN/weights/last.safetensors weights after the last epoch
    RUN/metrics.jsonl            one line of figures per epoch
    RUN/results.json             final figures on the held-out split, with the best weights
    RUN/run.json                 provenance: data folder and fingerprint, versions, device, timing
    RUN/tokenizer.json           text runs: the tokenizer trained on the training split
    RUN/thresholds.json          multi-label runs: the per-label decision thresholds (and how
                                 they were chosen: train.threshold, on the validation split)
    RUN/plots/*.png              learning curves and confusion matrix (with matplotlib)
    RUN/checkpoint.safetensors   model, optimizer and loop state after the last epoch (--resume)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.recipe import Recipe, parse_recipe, read_toml
from toolkit.training.data import Split
from toolkit_deploy.pathtext import path_from_text

RECIPE = "recipe.toml"
LABELS = "labels.json"
SPLIT = "split.json"
WEIGHTS = "weights"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
INFO = "run.json"
TOKENIZER = "tokenizer.json"
THRESHOLDS = "thresholds.json"

REQUIRED = (RECIPE, LABELS, SPLIT, INFO, f"{WEIGHTS}/best.safetensors")


def run_figures(path: str | os.PathLike) -> dict[str, Any]:
    """The final figures a run folder recorded on its held-out split (`RESULTS`); the runtime's
    `toolkit compare` reads them through the `toolkit.run_folders` entry point `figures`."""
    results = Path(path) / RESULTS
    if not results.is_file():
        raise FileNotFoundError(f"{path} has no {RESULTS}: not a finished training run.")
    return json.loads(results.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Run:
    """A finished training run, read back from its folder."""

    path: Path
    recipe: Recipe
    labels: tuple[str, ...]
    split: Split
    info: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return Path(path_from_text(self.info["data_dir"]))

    def weights(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise ValueError(f"weights must be 'best' or 'last'. Got {which!r}.")
        return self.path / WEIGHTS / f"{which}.safetensors"

    def preprocess(self) -> Any:
        """The runtime's preprocessing spec of this run (the decoder that trained it)."""
        return run_preprocess(self.recipe, self.path)

    @property
    def multilabel(self) -> bool:
        """Whether the run trained a multi-label model (`train.task`)."""
        return self.recipe.train.task == "multilabel"

    def thresholds(self) -> tuple[float, ...]:
        """A multi-label run's decision thresholds, as training chose them (`THRESHOLDS`).

        Raises:
            FileNotFoundError: The run is multi-label but lacks its thresholds file.
        """
        path = self.path / THRESHOLDS
        if not path.is_file():
            raise FileNotFoundError(f"{self.path} is a multi-label run without its {THRESHOLDS};"
                                    " the run is incomplete or was altered. Train it again.")
        return tuple(float(t) for t in json.loads(path.read_text(encoding="utf-8"))["thresholds"])

    def load_model(self, which: str = "best"):
        """The trained `nn.Module` in eval mode, on the CPU.

        Raises:
            ModelFormatError: The weights file is not safetensors (e.g. a pickle put in its
                place, which is never unpickled) or does not fit the recipe's model.
        """
        from toolkit.models import create_model
        from toolkit.training.weights import load_state

        model = create_model(self.recipe, len(self.labels), self.preprocess())
        load_state(model, self.weights(which))
        return model.eval()


def load_run(path: str | os.PathLike, *, finished: bool = True) -> Run:
    """Read a run folder written by `toolkit train`.

    Args:
        path: The run folder.
        finished: Require the weights of a completed run (False reads an interrupted one, to
            resume it).

    Raises:
        FileNotFoundError: The folder or one of its required files is missing.
    """
    path = Path(path)
    if path.is_file():
        from toolkit.training.weights import PICKLE_SUFFIXES

        pickle = (" A PyTorch checkpoint is a pickle, which toolkit never loads (unpickling can "
                  "run any code)." if path.suffix.lower() in PICKLE_SUFFIXES else "")
        raise FileNotFoundError(
            f"{path} is a file; expected a run folder written by `toolkit train --out RUN`.{pickle}"
        )
    required = REQUIRED if finished else (RECIPE, LABELS, SPLIT, INFO)
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{path} is not a complete training run: missing {', '.join(missing)}. "
            "Pass the --out folder of `toolkit train`."
        )
    recipe = parse_recipe(read_toml((path / RECIPE).read_text(encoding="utf-8"),
                                    str(path / RECIPE)), source=str(path / RECIPE))
    labels = tuple(json.loads((path / LABELS).read_text(encoding="utf-8")))
    split = Split.from_dict(json.loads((path / SPLIT).read_text(encoding="utf-8")))
    info = json.loads((path / INFO).read_text(encoding="utf-8"))
    return Run(path, recipe, labels, split, info)


def run_preprocess(recipe: Recipe, folder: Path) -> Any:
    """The preprocessing spec of the run in `folder`: the recipe's, plus what the run learnt from
    its data (a text run's tokenizer)."""
    if recipe.modality != "text":
        return recipe.data.preprocess()
    path = folder / TOKENIZER
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is a text run without its {TOKENIZER}; the run is "
                                "incomplete or was altered. Train it again.")
    return recipe.data.preprocess(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file so a crash never leaves a truncated file."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # whatever failed, no .tmp is left beside the run
