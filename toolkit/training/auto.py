"""Recipe keys set to `auto`, chosen from the run's data when it starts.

`resolve_auto(recipe, split, data_dir)` returns the recipe with every `auto` key replaced by a
value, and what was chosen and why; the trainer writes the resolved recipe to the run folder
(so that export, resume and `toolkit inspect` see plain numbers) and the choices to `run.json`.

- `train.epochs`: enough epochs for `train.steps` optimizer steps. A fixed epoch count gives a
  300-file set 70 steps and a 100,000-file set 30,000; a step budget gives both the same
  optimisation.
- `train.patience`: a quarter of the epochs, at least 5 (early stopping then ends runs that have
  stopped improving, whatever their length).
- `train.merge_val`: `always` when a class of the training split has fewer than
  `MERGE_VAL_BELOW_PER_CLASS` files: the validation files are trained on too, for the whole step
  budget (a validation split of two files per class chose epoch 2 of 250 by noise, and the model
  trained for it was 10 points behind one trained on every file for the budget: 0.58 against
  0.68 on 20 man pages per class), else `never`.
- `data.image_size` (images): the median shorter side of the training images, a multiple of 8
  in [16, 64]: 32×32 digits are not upscaled to 64×64 (4× the pixels, and the cost).
- `data.channels` (images): 1 when every training image is stored as grayscale, else 3.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path
from typing import Any

from toolkit.recipe import AUTO, MERGE_VAL_BELOW_PER_CLASS, Recipe
from toolkit.training.data import Split

#: `data.image_size = "auto"` stays within these sides (the recipe's network has four stages
#: that halve the resolution; 64 keeps larger photos at the cost of the former default).
AUTO_IMAGE_SIDES = (16, 64)
#: Image headers read to choose the size and channels (evenly spread over the training split).
AUTO_IMAGE_SAMPLE = 512
#: PIL modes of images stored with one channel.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "La"})


def resolve_auto(recipe: Recipe, split: Split, data_dir: Path,
                 world_size: int = 1) -> tuple[Recipe, dict[str, Any]]:
    """The recipe with its `auto` keys chosen from `split`, and {key: {value, reason}}."""
    chosen: dict[str, Any] = {}
    data, train = recipe.data, recipe.train
    if recipe.modality == "image" and AUTO in (data.image_size, data.channels):
        size, channels, reasons = _image_shape(split, data_dir)
        if data.image_size == AUTO:
            data = dataclasses.replace(data, image_size=size)
            chosen["data.image_size"] = {"value": size, "reason": reasons["size"]}
        if data.channels == AUTO:
            data = dataclasses.replace(data, channels=channels)
            chosen["data.channels"] = {"value": channels, "reason": reasons["channels"]}
        data.preprocess()  # mean/std against the chosen channels
    if split.multilabel and train.merge_val == AUTO:
        train = dataclasses.replace(train, merge_val="never")
        chosen["train.merge_val"] = {"value": "never", "reason": (
            "multi-label: the decision thresholds are tuned on the validation split")}
    if (split.multilabel and isinstance(train.threshold, str)
            and (train.merge_val == "always" or not split.val)):
        raise ValueError(
            f"train.threshold = \"{train.threshold}\" tunes the thresholds on the validation "
            "split, and this run has none to tune on (train.merge_val = \"always\", or no "
            "validation rows). Use train.merge_val = \"never\" with validation rows, or a "
            "fixed train.threshold such as 0.5.")
    if train.merge_val == "always" and not (split.val and split.test):
        raise ValueError(
            "train.merge_val = \"always\" trains on the validation files too, so the held-out "
            "figures need a test split, and this run has "
            f"{len(split.val)} validation and {len(split.test)} test files. Give the data a "
            "test/ folder (or data.test_fraction > 0), or use train.merge_val = \"auto\" or "
            "\"never\".")
    if train.merge_val == AUTO:
        counts = [sum(1 for _, t in split.train if t == c) for c in range(len(split.classes))]
        smallest = min(counts) if counts else 0
        merge = ("always" if split.val and split.test and smallest < MERGE_VAL_BELOW_PER_CLASS
                 else "never")
        train = dataclasses.replace(train, merge_val=merge)
        chosen["train.merge_val"] = {"value": merge, "reason": (
            "no validation split" if not split.val else
            "no test split (the held-out figures come from the validation split)"
            if not split.test else
            f"the smallest class has {smallest} training files "
            f"({'<' if merge == 'always' else '>='} {MERGE_VAL_BELOW_PER_CLASS})")}
    trained_on = len(split.train) + (len(split.val) if train.merge_val == "always" else 0)
    if train.epochs == AUTO:
        per_process = math.ceil(trained_on / world_size)
        steps_per_epoch = math.ceil(per_process / max(1, train.batch_size // world_size))
        epochs = max(1, math.ceil(train.steps / max(1, steps_per_epoch)))
        train = dataclasses.replace(train, epochs=epochs)
        chosen["train.epochs"] = {"value": epochs, "reason": (
            f"{train.steps} steps (train.steps) at {steps_per_epoch} steps per epoch "
            f"({trained_on} training files, batch {train.batch_size})")}
    if train.patience == AUTO:
        patience = max(5, train.epochs // 4)
        train = dataclasses.replace(train, patience=patience)
        chosen["train.patience"] = {"value": patience,
                                    "reason": f"a quarter of {train.epochs} epochs, at least 5"}
    return dataclasses.replace(recipe, data=data, train=train), chosen


def _image_shape(split: Split, data_dir: Path) -> tuple[int, int, dict[str, str]]:
    """(side, channels, reasons) from the headers of up to AUTO_IMAGE_SAMPLE training images."""
    from PIL import Image

    items = split.train
    step = max(1, len(items) // AUTO_IMAGE_SAMPLE)
    sides, modes = [], set()
    for rel, _ in items[::step][:AUTO_IMAGE_SAMPLE]:
        # Headers only: Image.open does not decode pixels. Unreadable files are the decoder's
        # to report when the split is read; they do not vote here.
        try:
            # A multi-label table names its files relative to its own folder.
            with Image.open((data_dir.parent if data_dir.is_file() else data_dir)
                            / rel) as image:
                sides.append(min(image.size))
                modes.add(image.mode)
        except Exception:  # noqa: BLE001 - any file Pillow cannot open just does not vote
            continue
    low, high = AUTO_IMAGE_SIDES
    median = statistics.median(sides) if sides else high
    side = int(min(high, max(low, 8 * round(median / 8))))
    gray = bool(modes) and modes <= GRAY_MODES
    reasons = {
        "size": f"median shorter side {median:g} px of {len(sides)} training images, a "
                f"multiple of 8 in [{low}, {high}]",
        "channels": (f"every one of {len(sides)} training images is grayscale" if gray else
                     f"training images are stored as {', '.join(sorted(modes)) or 'nothing'}"),
    }
    return side, 1 if gray else 3, reasons
