"""The training loop: recipe + labelled folder → run folder (see `toolkit.run`).

Deterministic on the CPU (same recipe, data and seed → bit-identical weights): every epoch
re-seeds shuffling, augmentation and dropout from (seed, epoch). The same property makes `resume`
exact: a run killed mid-epoch restarts that epoch from the last checkpoint and ends with the
weights of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from toolkit import run as runfile
from toolkit.models import create_model
from toolkit.recipe import MONITORS, Recipe
from toolkit.training.augment import augment
from toolkit.training.auto import resolve_auto
from toolkit.training.checkpoint import FILE as CHECKPOINT
from toolkit.training.checkpoint import LoopState, load_checkpoint, save_checkpoint
from toolkit.training.data import (
    DecodedFiles,
    Split,
    decoded_dataset,
    fingerprint,
    make_split,
    split_samples,
)
from toolkit.training.distributed import World, barrier, broadcast_flag, close_world, init_world
from toolkit.training.losses import balanced_weights, create_loss
from toolkit.training.optim import create_optimizer, lr_factor
from toolkit_deploy.decoders import create_decoder, decoder_extensions
from toolkit_deploy.errors import DatasetError, DecodeError, DeviceError
from toolkit_deploy.metrics import classification_metrics
from toolkit_deploy.pathtext import path_text


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


def versions() -> dict[str, str]:
    import onnx

    import toolkit_deploy
    from toolkit.version import __version__

    return {
        "toolkit": __version__, "toolkit_deploy": toolkit_deploy.__version__,
        "torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
        "python": platform.python_version(),
    }


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of everything random in `epoch` (shuffle, augmentation, dropout)."""
    return seed * 1_000_003 + epoch


@dataclass(frozen=True)
class Figures:
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


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    # The CPU kernels this toolkit uses are deterministic already (the determinism test proves
    # it); PyTorch's deterministic mode there only swaps in slower kernels (~19 % per epoch
    # measured), so it is switched on for CUDA alone, where atomics make kernels vary. Kernels
    # without a deterministic version warn instead of failing.
    if device.type != "cuda":
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


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

    Under `torchrun` (WORLD_SIZE > 1) every process calls this; they train one model with
    DistributedDataParallel and only rank 0 writes `out`.

    Args:
        recipe: The validated recipe (see `load_recipe`).
        data_dir: `DIR/<class>/<file>`, or `DIR/train|val|test/<class>/<file>`; for text
            recipes also a labelled `.csv` / `.jsonl` table.
        out: The run folder to create.
        device: `auto`, `cpu` or `cuda`.
        overwrite: Replace an existing run folder.
        progress: Show a progress bar per epoch on stderr (when it is a terminal).

    Returns:
        The finished run, as `load_run(out)` reads it.
    """
    out, data_dir = Path(out), Path(data_dir).resolve()
    torch_device = resolve_torch_device(device)
    _check_precision(recipe, torch_device)
    create_loss(recipe.train.loss)  # validates names before any data is read
    lr_factor(recipe.optim, 0, 1)
    if recipe.train.task == "multilabel":
        from toolkit.training.data import make_label_set_split

        split = make_label_set_split(data_dir, recipe.data, recipe.data.val_fraction,
                                     recipe.data.test_fraction, recipe.train.seed)
    else:
        split = make_split(data_dir, decoder_extensions(recipe.modality),
                           recipe.data.val_fraction, recipe.data.test_fraction,
                           recipe.train.seed, recipe.data)
    world = init_world(torch_device)
    try:
        recipe, chosen = resolve_auto(recipe, split, data_dir, world.size)
        if world.is_main:
            # Bad data fails here, before anything is written at `out`.
            tokenizer = _fit_tokenizer(recipe, split, data_dir) if recipe.modality == "text" else ""
            _prepare_out(out, overwrite)
            _write_start(out, recipe, split, data_dir, torch_device, world, tokenizer, chosen)
            if progress:
                for key, value in chosen.items():
                    print(f"{key} = {value['value']}  ({value['reason']})", file=sys.stderr)
        barrier(world)
        _fit(recipe, split, data_dir, out, torch_device, world, progress, resume=False)
    finally:
        close_world(world)
    return runfile.load_run(out)


def resume(
    run_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
) -> runfile.Run:
    """Continue an interrupted run from its last checkpoint, with its own recipe and split.

    Raises:
        ValueError: The run has finished, or its data changed since it started.
    """
    run = runfile.load_run(run_dir, finished=False)
    if run.info.get("finished"):
        raise ValueError(f"{run.path} has already finished; nothing to resume.")
    data = Path(data_dir).resolve() if data_dir is not None else run.data_dir
    if fingerprint(data, run.split) != run.info["data_fingerprint"]:
        raise DatasetError(
            f"The data at {data} differs from the data {run.path} started on (sha256 "
            "fingerprint mismatch); a resumed run must see the same files. Restore them, or "
            "start a new run."
        )
    torch_device = resolve_torch_device(device)
    _check_precision(run.recipe, torch_device)
    world = init_world(torch_device)
    try:
        _fit(run.recipe, run.split, data, run.path, torch_device, world, progress, resume=True)
    finally:
        close_world(world)
    return runfile.load_run(run.path)


def _check_precision(recipe: Recipe, device: torch.device) -> None:
    if recipe.train.precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "train.precision = 'fp16' needs CUDA (the CPU has no fp16 autocast worth having). "
            "Use 'bf16' or 'fp32' on the CPU."
        )


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"Run folder {out} already exists and is not empty; pass --overwrite to replace "
                "it, --resume to continue it, or choose another --out."
            )
        if not (out / runfile.RECIPE).exists() and not (out / runfile.INFO).exists():
            raise FileExistsError(
                f"Refusing to overwrite {out}: it does not look like a toolkit run folder "
                f"(no {runfile.RECIPE}). Choose another --out."
            )
        shutil.rmtree(out)
    (out / runfile.WEIGHTS).mkdir(parents=True, exist_ok=True)


def _fit_tokenizer(recipe: Recipe, split: Split, data_dir: Path) -> str:
    """Train a text run's tokenizer on its training split, reading texts as the runtime does;
    returns its JSON document."""
    from toolkit.training.tokenizer import train_tokenizer
    from toolkit_deploy.decoders.text import read_text_file

    data = recipe.data
    encoding = data.decoder_options.get("encoding")
    samples = split_samples(data_dir, split.train, data)

    def texts() -> Iterator[str]:
        for source, name in zip(samples.sources, samples.names, strict=True):
            try:
                yield source if isinstance(source, str) else read_text_file(
                    source, encoding, data.max_bytes)
            except DecodeError as e:
                raise DecodeError(f"Cannot read training sample {name}: {e}") from e

    return train_tokenizer(texts(), data)


def _write_start(out: Path, recipe: Recipe, split: Split, data_dir: Path,
                 device: torch.device, world: World, tokenizer: str,
                 chosen: dict[str, Any]) -> None:
    if tokenizer:
        (out / runfile.TOKENIZER).write_text(tokenizer, encoding="utf-8")
    (out / runfile.RECIPE).write_text(recipe.to_toml(), encoding="utf-8")
    runfile.write_json(out / runfile.LABELS, list(split.classes))
    runfile.write_json(out / runfile.SPLIT, split.to_dict())
    runfile.write_json(out / runfile.INFO, {
        "recipe": recipe.name, "data_dir": path_text(str(data_dir)),
        "data_fingerprint": fingerprint(data_dir, split),
        "n_samples": {s: len(getattr(split, s)) for s in ("train", "val", "test")},
        "auto": chosen, "device": str(device), "world_size": world.size,
        "versions": versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": False,
    })


def _save_weights(model: torch.nn.Module, path: Path, epoch: int) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, tmp, metadata={"epoch": str(epoch)})
    os.replace(tmp, path)


def _figures(logits: np.ndarray, targets: np.ndarray, loss_fn: Any) -> Figures:
    if len(targets) == 0:
        return Figures(None, None)
    loss = float(loss_fn(torch.from_numpy(logits), torch.from_numpy(targets)))
    return Figures(loss, float(_hits(torch.from_numpy(logits), torch.from_numpy(targets)))
                   / len(targets))


def _hits(logits: torch.Tensor, targets: torch.Tensor) -> int:
    """Samples predicted right: the argmax is the class, or (label sets: 2-D targets) every
    label is on exactly when its logit is > 0 (probability 0.5): the exact-match count."""
    if targets.ndim == 2:
        return int(((logits > 0) == (targets > 0.5)).all(1).sum())
    return int((logits.argmax(1) == targets).sum())


def _softmax(logits: np.ndarray) -> np.ndarray | None:
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy() if logits.size else None


def _keep_metrics_until(path: Path, epoch: int) -> None:
    """Drop metric lines of epochs after the checkpoint (written just before a kill)."""
    if path.exists():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines()
                 if line and json.loads(line)["epoch"] <= epoch]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _fit(recipe: Recipe, split: Split, data_dir: Path, out: Path, device: torch.device,
         world: World, progress: bool, resume: bool) -> None:
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", world.local_rank)
    # train.merge_val: the validation files are trained on too (no validation, no early stop).
    merged = recipe.train.merge_val == "always" and bool(split.val)
    train_items, val_items = (split.train + split.val, ()) if merged else (split.train, split.val)
    preprocess = runfile.run_preprocess(recipe, out)
    decoder = create_decoder(recipe.modality, preprocess, **recipe.data.decoder_options)
    model, loop = _train_loop(recipe, preprocess, decoder, train_items, val_items, data_dir, out,
                              device, world, progress, resume)
    if world.is_main:
        _finish(out, model, split, data_dir, decoder, device, recipe, loop, len(train_items))
    barrier(world)


def _train_loop(recipe: Recipe, preprocess: Any, decoder: Any, train_items: tuple,
                val_items: tuple, data_dir: Path, out: Path, device: torch.device, world: World,
                progress: bool, resume: bool) -> tuple[torch.nn.Module, LoopState]:
    """Train `recipe`'s model on `train_items`, validating on `val_items` after every epoch;
    returns the model (last weights) and the final loop state."""
    t = recipe.train
    classes = len(json.loads((out / runfile.LABELS).read_text(encoding="utf-8")))
    with _deterministic(device):
        torch.manual_seed(t.seed)  # the initial weights
        model = create_model(recipe, classes, preprocess).to(device)
        optimizer = create_optimizer(model, recipe.optim)
        scaler = torch.amp.GradScaler("cuda") if t.precision == "fp16" else None
        loop = LoopState()
        checkpoint = out / CHECKPOINT
        if resume and checkpoint.exists():
            loop, scaler_state = load_checkpoint(checkpoint, model, optimizer)
            if scaler is not None and scaler_state:
                scaler.load_state_dict(scaler_state)
        if world.is_main:
            _keep_metrics_until(out / runfile.METRICS, loop.epoch)
        if t.task == "multilabel":
            from toolkit.training.labelsets import positive_weights
            from toolkit.training.losses import create_label_set_loss

            loss_fn = create_label_set_loss(
                t.loss, t.label_smoothing, positive_weights(train_items, classes)
                if t.class_weights == "balanced" else None)
        else:
            weights = (balanced_weights([c for _, c in train_items], classes)
                       if t.class_weights == "balanced" else None)
            loss_fn = create_loss(t.loss, t.label_smoothing, weights)
        trained = model
        if world.size > 1:
            trained = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        sample_bytes = (np.dtype(preprocess.input_dtype).itemsize
                        * int(np.prod(preprocess.input_shape)))

        def dataset(items: tuple) -> Any:
            return decoded_dataset(split_samples(data_dir, items, recipe.data), decoder,
                                   recipe.data.cache, sample_bytes)

        train_set = dataset(train_items)
        if hasattr(model, "adapt") and not (resume and checkpoint.exists()):
            # Data-dependent constants (a text bag's IDF table), from the whole training split.
            model.adapt(x.to(device) for x, _ in DataLoader(train_set, batch_size=256))
        sampler = DistributedSampler(train_set, num_replicas=world.size, rank=world.rank,
                                     shuffle=True, seed=t.seed)
        workers = recipe.data.workers
        common = {"num_workers": workers, "persistent_workers": workers > 0,
                  "pin_memory": device.type == "cuda"}
        train_loader = DataLoader(train_set, batch_size=max(1, t.batch_size // world.size),
                                  sampler=sampler, **common)
        val_loader = DataLoader(dataset(val_items), batch_size=t.batch_size, **common)
        sign = MONITORS[t.monitor]
        for epoch in range(loop.epoch + 1, t.epochs + 1):
            started = time.time()
            sampler.set_epoch(epoch)
            torch.manual_seed(epoch_seed(t.seed, epoch))  # dropout
            fig = _train_epoch(trained, train_loader, optimizer, scaler, loss_fn, recipe, epoch,
                               device, progress and world.is_main)
            stop = False
            if world.is_main:
                val = _figures(*predict_logits(model, val_loader, device), loss_fn)
                loop = _end_epoch(out, model, optimizer, scaler, loop, epoch, fig, val, sign,
                                  bool(val_items), recipe, time.time() - started, progress)
                stop = t.patience > 0 and loop.bad_epochs >= t.patience
            if broadcast_flag(world, stop):
                break
    return model, loop


def _end_epoch(out: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scaler: Any, loop: LoopState, epoch: int, fig: Figures, val: Figures, sign: int,
               has_val: bool, recipe: Recipe, seconds: float, progress: bool) -> LoopState:
    """Log the epoch, save last/best weights and the checkpoint; returns the new loop state."""
    row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": fig.loss,
           "train_accuracy": fig.accuracy, "val_loss": val.loss, "val_accuracy": val.accuracy,
           "seconds": round(seconds, 3)}
    with open(out / runfile.METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    if progress:
        shown = (f"  val loss {val.loss:.4f} acc {val.accuracy:.4f}" if has_val
                 else "  (no validation split)")
        print(f"epoch {epoch}/{recipe.train.epochs}  train loss {fig.loss:.4f} "
              f"acc {fig.accuracy:.4f}{shown}", file=sys.stderr)
    _save_weights(model, out / runfile.WEIGHTS / "last.safetensors", epoch)
    # Best: strictly better on the monitored figure; a tie goes to the later epoch (a
    # validation split reaching its best accuracy early and then tying it would otherwise keep
    # an under-trained model). Only a strictly better figure resets early stopping.
    # Without a validation split best = last.
    score = [sign * row[recipe.train.monitor], float(epoch)] if has_val else [float(epoch)]
    if loop.best_value is None or score > loop.best_value:
        _save_weights(model, out / runfile.WEIGHTS / "best.safetensors", epoch)
        improved = loop.best_value is None or score[0] > loop.best_value[0]
        loop = LoopState(epoch, score, epoch, 0 if improved else loop.bad_epochs + 1)
    else:
        loop = LoopState(epoch, loop.best_value, loop.best_epoch, loop.bad_epochs + 1)
    save_checkpoint(out / CHECKPOINT, model, optimizer, loop,
                    scaler.state_dict() if scaler is not None else None)
    return loop


def _finish(out: Path, model: torch.nn.Module, split: Split, data_dir: Path, decoder: Any,
            device: torch.device, recipe: Recipe, loop: LoopState, trained_on: int) -> None:
    """Figures of the kept model on the held-out split, and the run's closing provenance."""
    from toolkit.training.weights import load_state

    load_state(model, out / runfile.WEIGHTS / "best.safetensors")
    held_name, held = split.held_out
    loader = DataLoader(DecodedFiles(split_samples(data_dir, held, recipe.data), decoder),
                        batch_size=recipe.train.batch_size)
    logits, targets = predict_logits(model, loader, device)
    if recipe.train.task == "multilabel":
        results = _label_set_results(model, split, data_dir, decoder, device, recipe, logits,
                                     targets, out)
        results = {"split": held_name, "best_epoch": loop.best_epoch, **results}
    else:
        results = {"split": held_name, "best_epoch": loop.best_epoch,
                   **classification_metrics(targets.tolist(), logits.argmax(1).tolist(),
                                            split.classes, _softmax(logits))}
    runfile.write_json(out / runfile.RESULTS, results)
    info = json.loads((out / runfile.INFO).read_text(encoding="utf-8"))
    stopped = loop.epoch if loop.epoch < recipe.train.epochs else None
    info.update(best_epoch=loop.best_epoch, epochs_run=loop.epoch, stopped_early_at=stopped,
                trained_on=trained_on, finished=True,
                finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    runfile.write_json(out / runfile.INFO, info)
    from toolkit.plots import write_run_plots

    write_run_plots(out)


def _label_set_results(model: torch.nn.Module, split: Split, data_dir: Path, decoder: Any,
                       device: torch.device, recipe: Recipe, logits: np.ndarray,
                       targets: np.ndarray, out: Path) -> dict[str, Any]:
    """Tune the decision thresholds on the validation split (`train.threshold`), save them in
    the run (`runfile.THRESHOLDS`), and measure the held-out label sets they make."""
    from toolkit_deploy.labelsets import decide, tune_thresholds
    from toolkit_deploy.metrics import multilabel_metrics

    mode = recipe.train.threshold
    if isinstance(mode, str):
        loader = DataLoader(DecodedFiles(split_samples(data_dir, split.val, recipe.data),
                                         decoder), batch_size=recipe.train.batch_size)
        val_logits, val_targets = predict_logits(model, loader, device)
        val_probs = torch.sigmoid(torch.from_numpy(val_logits)).numpy()
        thresholds = tune_thresholds(val_probs, val_targets > 0.5, mode)
    else:
        thresholds = [float(mode)] * len(split.classes)
    runfile.write_json(out / runfile.THRESHOLDS, {"mode": mode, "split": "val",
                                                  "thresholds": thresholds})
    probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
    return {**multilabel_metrics(targets > 0.5, decide(probs, thresholds), split.classes, probs),
            "thresholds": thresholds}


def _train_epoch(model: torch.nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
                 scaler: Any, loss_fn: Any, recipe: Recipe, epoch: int, device: torch.device,
                 progress: bool) -> Figures:
    from tqdm import tqdm

    model.train()
    generator = torch.Generator().manual_seed(epoch_seed(recipe.train.seed, epoch))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.train.precision)
    clip = recipe.optim.clip_grad_norm
    total_loss, correct, seen = 0.0, 0, 0
    steps = len(loader)
    bar = tqdm(loader, desc=f"epoch {epoch}/{recipe.train.epochs}", unit="batch",
               file=sys.stderr, disable=None if progress else True, leave=False)
    for step, (x, y) in enumerate(bar):
        factor = lr_factor(recipe.optim, epoch - 1 + step / steps, recipe.train.epochs)
        for group in optimizer.param_groups:
            group["lr"] = recipe.optim.lr * factor
        x = augment(x, recipe.data, generator)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        total_loss += loss.item() * len(y)
        correct += _hits(logits, y)
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
    return Figures(total_loss / seen, correct / seen)
