"""ONNX Runtime sessions: explicit execution providers, verified after creation, sized threads,
on model files whose external data was checked to stay in their folder first."""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from toolkit_deploy.errors import DeviceError, MissingDependencyError, ModelFormatError

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
        raise MissingDependencyError(
            "toolkit-deploy needs ONNX Runtime: pip install 'toolkit-deploy[cpu]', or "
            "'toolkit-deploy[gpu]' for CUDA (onnxruntime-gpu; never both)."
        ) from e
    return ort


def onnxruntime_distributions() -> list[tuple[str, str]]:
    """(name, version) of each installed distribution that provides the `onnxruntime` import
    package (onnxruntime, onnxruntime-gpu, ...); found from package metadata, without importing."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    found = []
    for name in sorted(set(packages_distributions().get("onnxruntime", []))):
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:  # metadata without a version: still worth naming
            found.append((name, "?"))
    return found


def describe_onnxruntime() -> str:
    """The installed ONNX Runtime distributions, e.g. `onnxruntime 1.20.1`, for messages."""
    found = onnxruntime_distributions()
    if not found:
        return "an onnxruntime not installed as a package (no distribution metadata)"
    return " and ".join(f"{name} {version}" for name, version in found)


def _no_cuda_message(available: list[str]) -> str:
    names = [name for name, _ in onnxruntime_distributions()]
    if len(names) > 1:
        fix = (f"{' and '.join(names)} are installed together and overwrite each other's files: "
               f"`pip uninstall -y {' '.join(names)} && pip install onnxruntime-gpu`")
    else:
        fix = ("install the GPU build instead: `pip uninstall onnxruntime && pip install "
               "onnxruntime-gpu` (or toolkit-deploy[gpu])")
    return (f"--device cuda was asked for, but the installed ONNX Runtime "
            f"({describe_onnxruntime()}) has no CUDAExecutionProvider; its providers are "
            f"{available}. To run on CUDA, {fix}; or use --device cpu. `toolkit doctor` shows "
            "the whole environment.")


def check_external_data(path: str | os.PathLike) -> None:
    """Refuse a model file whose tensors point at external data outside its folder.

    ONNX keeps large weights in separate files named by a `location` relative to the model. A
    hostile file could name `../../secret`, an absolute path or a symlink leading out of the
    folder, and make ONNX Runtime read (and a model reveal) any file. Every location must
    resolve, symlinks followed, to a regular file inside the model's folder or a subfolder.
    Checked on the file itself, before ONNX Runtime opens it.

    Raises:
        FileNotFoundError: `path` is not a regular file.
        ModelFormatError: The file is not ONNX, or a location leaves the folder, is missing or is
            not a regular file.
    """
    import mmap

    from toolkit_deploy.onnxproto import external_data_locations

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Model file {path} does not exist or is not a regular file; "
                                "expected an .onnx file written by `toolkit export`.")
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ModelFormatError(f"{path} is empty (0 bytes); expected an ONNX model.")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                locations = external_data_locations(buf)
    except ModelFormatError as e:
        if str(e).startswith(str(path)):
            raise
        from toolkit_deploy.sniff import is_pickle_like, what_it_is

        what = what_it_is(path)
        if what != "something else":
            never = (" The runtime never unpickles a file (a pickle can run any code); export "
                     "the model with `toolkit export RUN --out model.onnx`."
                     if is_pickle_like(what) else "")
            raise ModelFormatError(f"The runtime cannot load {path}: it is {what}, not an ONNX "
                                   f"model ({e}).{never} Expected an .onnx file written by "
                                   "`toolkit export`.") from e
        raise ModelFormatError(f"The runtime cannot load {path}: it is {e} Expected an .onnx "
                               "file written by `toolkit export`.") from e
    except OSError as e:
        raise ModelFormatError(f"Cannot read model file {path}: {e.strerror or e}.") from e
    for location in dict.fromkeys(locations):
        _check_location(path, location)


def _check_location(model: Path, location: str) -> None:
    fix = ("Keep external data files in the model's folder (or a subfolder) under a relative "
           "name, as `toolkit export` and onnx.save(..., save_as_external_data=True) write them.")
    absolute = (PurePosixPath(location).is_absolute() or PureWindowsPath(location).drive
                or PureWindowsPath(location).root)
    if not location or "\0" in location or absolute:
        raise ModelFormatError(
            f"{model} points at external data {location!r}; expected a relative path inside its "
            f"folder, found {'an empty' if not location else 'an absolute or invalid'} one, "
            f"which is refused. {fix}")
    try:
        folder = model.parent.resolve()
        target = (model.parent / location).resolve()
        if target.is_symlink():
            # Python 3.13's resolve() returns a symlink loop unresolved where 3.11 and 3.12
            # raised RuntimeError; strict resolution names the loop (ELOOP) on every version.
            target.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # symlink loops, names too long
        raise ModelFormatError(f"{model} points at external data {location!r}, which cannot be "
                               f"resolved ({e}). {fix}") from e
    if target == folder or not target.is_relative_to(folder):
        raise ModelFormatError(
            f"{model} points at external data {location!r}, which resolves to {target}, outside "
            f"the model's folder {folder} (through '..' or a symlink); refused, since it could "
            f"make ONNX Runtime read any file. {fix}")
    if not target.is_file():
        found = "nothing" if not target.exists() else "something that is not a regular file"
        raise ModelFormatError(
            f"{model} points at external data {location!r}, but {target} is {found}. Copy the "
            "model's data file next to it (models and their .data files travel together).")


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
        raise DeviceError(_no_cuda_message(ort.get_available_providers()))
    check_external_data(path)
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=options,
                                       providers=providers)
    except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ModelFormatError(f"ONNX Runtime cannot load {path}: {e}") from e
    used = session.get_providers()
    if providers[0] not in used:
        raise DeviceError(
            f"Asked for {providers[0]} but the session runs on {used}: {describe_onnxruntime()} "
            "lists CUDA, but its CUDA libraries (CUDA runtime, cuDNN) probably failed to load "
            "(see onnxruntime's warnings above). Fix the CUDA install, or use --device cpu; "
            "`toolkit doctor` shows which providers can really run."
        )
    return session
