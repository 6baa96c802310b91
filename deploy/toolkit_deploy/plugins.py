"""What the runtime reaches of the training stack, by entry points only: the runtime never imports
`toolkit` (a test checks its source for it).

- `toolkit.commands`: the training commands (`data`, `train`, `export`, …), plugged into the one
  `toolkit` CLI.
- `toolkit.run_folders`: what the runtime's commands do with a training run folder: `evaluate`
  (`evaluate(run, data, options: EvalOptions, device=...)`, the run's PyTorch model on labelled
  data) and `figures` (`figures(run)`, the figures the run recorded). The run folder's layout is
  the training stack's.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from toolkit_deploy.errors import ToolkitError

COMMANDS = "toolkit.commands"
RUN_FOLDERS = "toolkit.run_folders"
INSTALL_TRAINING = (
    "pip install -c constraints.txt ./deploy . (from a clone of the toolkit repository; "
    "constraints.txt pins the CPU build of torch)"
)


class TrainingStackMissing(ToolkitError):
    """A command needs the training stack (the `toolkit` distribution), which is not installed."""


def commands() -> dict[str, EntryPoint]:
    """The commands the training stack registers, by name (none on a runtime-only install)."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS)}


def training_installed() -> bool:
    """Whether the training stack has registered its commands (the `toolkit` distribution)."""
    return bool(entry_points(group=COMMANDS))


def run_folder_hook(name: str, what: str, hint: str = "") -> Callable[..., Any]:
    """The training stack's `name` function for run folders (`toolkit.run_folders`).

    Args:
        name: `evaluate` or `figures`.
        what: What needs it, for the message (e.g. "Evaluating a run folder").
        hint: What to do instead, appended to the message.

    Raises:
        TrainingStackMissing: The training stack is not installed (or registers no `name`).
    """
    found = [ep for ep in entry_points(group=RUN_FOLDERS) if ep.name == name]
    if not found:
        raise TrainingStackMissing(f"{what} needs the training stack: {INSTALL_TRAINING}.{hint}")
    return found[0].load()
