"""The resume checkpoint: model and optimizer state plus the loop's own state, without pickle.

Tensors go into one safetensors file; everything else (epoch, best-so-far, the optimizer's
non-tensor state and hyper-parameters) into its JSON metadata. The random state needs no saving:
every epoch re-seeds its generators from (seed, epoch), so a resumed epoch draws the same numbers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from toolkit_deploy.errors import ModelFormatError

FILE = "checkpoint.safetensors"
#: The metadata key holding the loop, optimizer and grad-scaler state as one JSON object.
#: Checkpoints written before it had four keys, each a JSON string; both are read.
META_KEY = "toolkit.checkpoint"
_LEGACY_KEYS = ("loop", "optim_groups", "optim_scalars", "scaler")


@dataclass(frozen=True)
class LoopState:
    """What the training loop needs besides model and optimizer to continue.

    Attributes:
        epoch: Last completed epoch.
        best_value: Best score so far, compared as a list (None before the first epoch).
        best_epoch: Epoch of `best_value`.
        bad_epochs: Epochs since the last improvement (early stopping).
    """

    epoch: int = 0
    best_value: list[float] | None = None
    best_epoch: int = 0
    bad_epochs: int = 0


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    loop: LoopState, scaler_state: dict[str, Any] | None = None) -> None:
    """Write the checkpoint atomically (a kill leaves the previous one intact)."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt["param_groups"]]
    # One metadata key holding one sorted JSON object: safetensors keeps metadata in a Rust
    # HashMap, whose order differs from one save to the next (six saves of one state gave six
    # different files), so several keys would make the same state different bytes.
    state = {"loop": asdict(loop), "optim_groups": groups, "optim_scalars": scalars,
             "scaler": scaler_state}
    meta = {META_KEY: json.dumps(state, sort_keys=True, separators=(",", ":"))}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, tmp, metadata=meta)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> tuple[LoopState, dict[str, Any] | None]:
    """Restore model and optimizer in place; returns the loop state and the grad scaler's.

    Raises:
        ModelFormatError: The file is not a safetensors checkpoint written by `toolkit train`
            (a pickle put in its place is refused, never unpickled), or it is damaged.
    """
    from toolkit.training.weights import open_weights

    with open_weights(path) as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    try:
        return _restore(meta, tensors, model, optimizer)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ModelFormatError(
            f"{path} is not a usable toolkit checkpoint ({type(e).__name__}: {str(e)[:300]}): it "
            "was damaged or replaced. Start the run again without --resume."
        ) from e


def _restore(meta: dict[str, str], tensors: dict[str, torch.Tensor], model: torch.nn.Module,
             optimizer: torch.optim.Optimizer) -> tuple[LoopState, dict[str, Any] | None]:
    if META_KEY in meta:
        saved = json.loads(meta[META_KEY])
        if not isinstance(saved, dict):
            raise TypeError(f"metadata {META_KEY!r} must be a JSON object")
    else:  # an earlier checkpoint: one JSON string per key
        saved = {key: json.loads(meta[key]) for key in _LEGACY_KEYS}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in saved["optim_scalars"].items():
        state.setdefault(int(index), {}).update(values)
    current = optimizer.state_dict()["param_groups"]
    # JSON has no tuples; torch's optimizers keep e.g. Adam's betas as one.
    groups = [{**{k: tuple(v) if isinstance(v, list) else v for k, v in group.items()},
               "params": now["params"]}
              for group, now in zip(saved["optim_groups"], current, strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return LoopState(**saved["loop"]), saved["scaler"]
