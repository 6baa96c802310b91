"""ONNX Runtime sessions: explicit execution providers, verified after creation, sized threads."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from toolkit_deploy.errors import DeviceError

DEVICES = ("cpu", "cuda", "auto")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    # CPU stays listed so that the few nodes CUDA has no kernel for can run; the check below still
    # refuses a session where CUDA itself did not load.
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def available_cores() -> int:
    """Cores this process may really use: CPU affinity, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity API
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: affinity is the answer
    return max(1, cores)


def onnxruntime() -> Any:
    """The `onnxruntime` module (CPU or GPU build), or an ImportError saying which to install."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError(
            "toolkit-deploy needs ONNX Runtime: pip install 'toolkit-deploy[cpu]', or "
            "'toolkit-deploy[gpu]' for CUDA (onnxruntime-gpu; never both)."
        ) from e
    return ort


def resolve_device(device: str) -> str:
    """Turn `auto` into `cuda` when ONNX Runtime has CUDA, else `cpu`; validate the name."""
    if device not in DEVICES:
        raise ValueError(f"Unknown device {device!r}; valid devices: {', '.join(DEVICES)}.")
    if device != "auto":
        return device
    ort = onnxruntime()
    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


def create_session(path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
    """Create an `onnxruntime.InferenceSession` on exactly the requested device.

    Args:
        path: The ONNX file.
        device: `cpu`, `cuda` or `auto` (CUDA when available, else CPU, decided up front).
        threads: Intra-op threads; default: the cores available to this process.

    Raises:
        DeviceError: CUDA was asked for but the session does not run on it.
    """
    ort = onnxruntime()
    resolved = resolve_device(device)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1. Got {threads}.")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    # Idle intra-op threads would otherwise spin between runs, taking the cores the decoding
    # threads need while a batch is being decoded: on 2 cores, scoring ran 1.2x (images) to 1.6x
    # (text) faster without spinning, with inference alone unchanged (benchmarks/README.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = _PROVIDERS[resolved]
    if resolved == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise DeviceError(
            "--device cuda was asked for, but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {ort.get_available_providers()}). Install the GPU runtime with "
            "`pip uninstall onnxruntime && pip install onnxruntime-gpu`, or use --device cpu."
        )
    session = ort.InferenceSession(os.fspath(path), sess_options=options, providers=providers)
    used = session.get_providers()
    if providers[0] not in used:
        raise DeviceError(
            f"Asked for {providers[0]} but the session runs on {used}; the CUDA libraries "
            "probably failed to load (see onnxruntime's warnings above). Fix the CUDA install "
            "or use --device cpu."
        )
    return session
