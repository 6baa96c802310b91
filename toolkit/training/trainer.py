"""The training loop: recipe + labelled folder → run folder (see `toolkit.run`)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from toolkit import run as runfile
from toolkit.models import create_model
from toolkit.recipe import Recipe
from toolkit.training.augment import random_flip
from toolkit.training.data import DecodedFiles, Split, fingerprint, make_split
from toolkit.training.losses import create_loss
from toolkit.training.optim import create_optimizer, lr_factor
from toolkit_deploy.decoders import create_decoder
from toolkit_deploy.errors import DeviceError
from toolkit_deploy.metrics import classification_metrics


def resolve_torch_device(device: str) -> torch.device:
    """`auto` → CUDA when torch sees a GPU, else CPU; `cuda` without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"Unknown device {device!r}; valid devices: auto, cpu, cuda.")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "--device cuda was asked for, but torch sees no CUDA device (this torch build: "
            f"{torch.__version__}). Use --device cpu, or install a CUDA build of torch."
        )
    return torch.device(device)


@dataclass(frozen=True)
class EpochFigures:
    loss: float | None
    accuracy: float | None


def predict_logits(
    model: torch.nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and targets of every batch of `loader`, with the model in eval mode."""
    model.eval()
    logits, targets = [], []
    with torch.no_grad():
        for x, y in loader:
            logits.append(model(x.to(device)).float().cpu().numpy())
            targets.append(y.numpy())
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(targets)


def _figures(logits: np.ndarray, targets: np.ndarray, loss_fn: Any) -> EpochFigures:
    if len(targets) == 0:
        return EpochFigures(None, None)
    loss = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(targets)))
    return EpochFigures(loss, float((logits.argmax(1) == targets).mean()))


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"Run folder {out} already exists and is not empty; pass --overwrite to replace "
                "it, or choose another --out."
            )
        if not (out / runfile.RECIPE).exists() and not (out / runfile.INFO).exists():
            raise FileExistsError(
                f"Refusing to overwrite {out}: it does not look like a toolkit run folder "
                f"(no {runfile.RECIPE}). Choose another --out."
            )
        shutil.rmtree(out)
    (out / runfile.WEIGHTS).mkdir(parents=True, exist_ok=True)


def _save_weights(model: torch.nn.Module, path: Path, epoch: int) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp, metadata={"epoch": str(epoch)})
    os.replace(tmp, path)


def versions() -> dict[str, str]:
    import onnx

    import toolkit
    import toolkit_deploy

    return {
        "toolkit": toolkit.__version__, "toolkit_deploy": toolkit_deploy.__version__,
        "torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
    }


def train(
    recipe: Recipe,
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> runfile.Run:
    """Train `recipe` on the labelled folder `data_dir` and write a run folder at `out`.

    Args:
        recipe: The validated recipe (see `load_recipe`).
        data_dir: `DIR/<class>/<file>`, or `DIR/train|val|test/<class>/<file>`.
        out: The run folder to create.
        device: `auto`, `cpu` or `cuda`.
        overwrite: Replace an existing run folder.
        progress: Show a progress bar per epoch on stderr.

    Returns:
        The finished run, as `load_run(out)` reads it.
    """
    started = time.time()
    out, data_dir = Path(out), Path(data_dir).resolve()
    torch_device = resolve_torch_device(device)
    loss_fn = create_loss(recipe.train.loss)
    lr_factor(recipe.optim, 0, recipe.train.epochs)  # validates the schedule name up front
    decoder = create_decoder(recipe.modality, recipe.data.preprocess())
    split = make_split(data_dir, decoder.extensions, recipe.data.val_fraction,
                       recipe.data.test_fraction, recipe.train.seed)
    torch.manual_seed(recipe.train.seed)
    model = create_model(recipe, len(split.classes)).to(torch_device)
    optimizer = create_optimizer(model, recipe.optim)
    _prepare_out(out, overwrite)
    _write_start(out, recipe, split, data_dir, torch_device)

    def loader(items: tuple, shuffle: bool) -> DataLoader:
        return DataLoader(
            DecodedFiles(data_dir, items, decoder), batch_size=recipe.train.batch_size,
            shuffle=shuffle, num_workers=recipe.data.workers,
            generator=torch.Generator().manual_seed(recipe.train.seed),
        )

    train_loader, val_loader = loader(split.train, True), loader(split.val, False)
    best_key, best_epoch = None, 0
    with open(out / runfile.METRICS, "w", encoding="utf-8") as metrics_file:
        for epoch in range(1, recipe.train.epochs + 1):
            t0 = time.time()
            fig = _train_epoch(model, train_loader, optimizer, loss_fn, recipe, epoch,
                               torch_device, progress)
            val = _figures(*predict_logits(model, val_loader, torch_device), loss_fn)
            row = {
                "epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                "train_loss": fig.loss, "train_accuracy": fig.accuracy,
                "val_loss": val.loss, "val_accuracy": val.accuracy,
                "seconds": round(time.time() - t0, 3),
            }
            metrics_file.write(json.dumps(row) + "\n")
            metrics_file.flush()
            if progress:
                shown = (f"  val loss {val.loss:.4f} acc {val.accuracy:.4f}" if split.val
                         else "  (no validation split)")
                print(f"epoch {epoch}/{recipe.train.epochs}  train loss {fig.loss:.4f} "
                      f"acc {fig.accuracy:.4f}{shown}", file=sys.stderr)
            _save_weights(model, out / runfile.WEIGHTS / "last.safetensors", epoch)
            # Best = highest validation accuracy, then lowest validation loss; without a
            # validation split the last epoch is the best one.
            key = (val.accuracy, -val.loss) if split.val else (epoch, 0.0)
            if best_key is None or key > best_key:
                best_key, best_epoch = key, epoch
                _save_weights(model, out / runfile.WEIGHTS / "best.safetensors", epoch)

    from safetensors.torch import load_file

    model.load_state_dict(load_file(out / runfile.WEIGHTS / "best.safetensors"))
    held_name, held = split.held_out
    logits, targets = predict_logits(model, loader(held, False), torch_device)
    results = {"split": held_name, "best_epoch": best_epoch,
               **classification_metrics(targets.tolist(), logits.argmax(1).tolist(), split.classes)}
    runfile.write_json(out / runfile.RESULTS, results)
    info = json.loads((out / runfile.INFO).read_text(encoding="utf-8"))
    info.update(best_epoch=best_epoch, seconds=round(time.time() - started, 2), finished=True)
    runfile.write_json(out / runfile.INFO, info)
    return runfile.load_run(out)


def _write_start(out: Path, recipe: Recipe, split: Split, data_dir: Path,
                 device: torch.device) -> None:
    (out / runfile.RECIPE).write_text(recipe.to_toml(), encoding="utf-8")
    runfile.write_json(out / runfile.LABELS, list(split.classes))
    runfile.write_json(out / runfile.SPLIT, split.to_dict())
    runfile.write_json(out / runfile.INFO, {
        "recipe": recipe.name, "data_dir": str(data_dir),
        "data_fingerprint": fingerprint(data_dir, split),
        "n_samples": {s: len(getattr(split, s)) for s in ("train", "val", "test")},
        "device": str(device), "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": False,
    })


def _train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 loss_fn: Any, recipe: Recipe, epoch: int, device: torch.device,
                 progress: bool) -> EpochFigures:
    from tqdm import tqdm

    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    steps = len(loader)
    generator = torch.Generator().manual_seed(recipe.train.seed * 100_003 + epoch)
    bar = tqdm(loader, desc=f"epoch {epoch}/{recipe.train.epochs}", unit="batch",
               file=sys.stderr, disable=not progress, leave=False)
    for step, (x, y) in enumerate(bar):
        factor = lr_factor(recipe.optim, epoch - 1 + step / steps, recipe.train.epochs)
        for group in optimizer.param_groups:
            group["lr"] = recipe.optim.lr * factor
        x = random_flip(x, recipe.data.flip, generator)
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
    return EpochFigures(total_loss / seen, correct / seen)
