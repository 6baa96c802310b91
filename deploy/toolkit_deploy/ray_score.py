"""Batch scoring across machines on Ray Data (the `ray` extra): `toolkit score … --engine ray
[--address ADDR]`.

The driver lists the inputs exactly as a local run does; Ray Data spreads them over a pool of
actors, each holding one ONNX Runtime session (created once per actor, on the run's device: one
GPU per actor with `--device cuda`) and the runtime's decoder, and streams the predictions back in
input order into the same table writer as a local run (so the table is committed in chunks and the
summary is written beside it). The model file travels through Ray's object store; the inputs must
be readable at the same paths on every node (a shared file system), as for any Ray Data job over
files.

Failures: an input its decoder refuses is an error row, made inside the actor, so no block ever
fails because of one bad file. Ray Data would otherwise drop a failed block when
`max_errored_blocks` allows it, and retry a dying actor's batches forever (its defaults for actor
pools): here no block may be dropped, and an actor that dies (out of memory, a native crash, a
lost node) is replaced and its batch retried a few times, after which the run stops with the
error, its committed rows kept for `--resume`.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

INSTALL = "pip install 'toolkit-deploy[ray]'"


class _Scorer:
    """A Ray actor: one Predictor, built once from the model file in the object store; scores
    batches of sources, decoding each batch in a pool of threads (as many as its session's),
    then running it."""

    def __init__(self, model: Any, device: str, threads: int | None,
                 options: dict[str, Any]) -> None:
        import ray

        from toolkit_deploy.predictor import Predictor
        from toolkit_deploy.session import available_cores

        folder = tempfile.mkdtemp(prefix="toolkit-ray-")
        path = Path(folder, "model.onnx")
        path.write_bytes(ray.get(model))  # the model file, from the object store
        self.predictor = Predictor(path, device, threads, **options)
        # Decoders that may crash their process (video) decode in the actor's own thread: a
        # crash kills the actor, which Ray replaces (RETRIES); threads could not contain it.
        self.threads = 1 if getattr(self.predictor.decoder, "isolate", False) else (
            threads or available_cores())
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="decode")

    def _decode(self, sources: list[Any]) -> list[np.ndarray | str]:
        from toolkit_deploy.pipeline import decode_chunk

        size = -(-len(sources) // self.threads)
        parts = [sources[i : i + size] for i in range(0, len(sources), size)]
        decode = functools.partial(decode_chunk, self.predictor.decoder)
        return [result for part in self.pool.map(decode, parts) for result in part]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from toolkit_deploy.errors import DecodeError
        from toolkit_deploy.pipeline import predict_arrays

        sources = [DecodeError(e) if e else (Path(s) if f else s) for s, e, f in zip(
            batch["source"], batch["failed"], batch["is_path"], strict=True)]
        decoded = self._decode(sources)
        good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
        width = len(self.predictor.labels)
        probs = np.full((len(sources), width), np.nan, np.float32)
        if good:
            probs[good] = predict_arrays(self.predictor, [decoded[i] for i in good],
                                         len(sources))
        errors = ["" if isinstance(d, np.ndarray) else d for d in decoded]
        return {"index": batch["index"], "probs": probs, "error": np.array(errors, dtype=object)}


def ray_module() -> Any:
    """The `ray` module with Ray Data, or `MissingDependencyError` naming the extra. `score`
    calls it before it creates any file, so a missing Ray leaves no partial table behind."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a separate part of the `ray` distribution)
    except ImportError as e:
        from toolkit_deploy.errors import MissingDependencyError

        raise MissingDependencyError(f"--engine ray needs Ray Data: {INSTALL}") from e
    return ray


#: Restarts of a dead actor, and retries of the batch it was running, before the run fails.
RETRIES = 3


def ray_predictions(predictor: Any, sources: list[Any], batch_size: int, workers: int | None,
                    address: str | None, threads: int | None, options: dict[str, Any]):
    """Yield `Prediction`s of `sources`, in order, computed by a pool of Ray actors.

    Args:
        predictor: The driver's `Predictor`: its model file and device are the actors'.
        sources: Inputs as the local engine takes them (paths, texts, `DecodeError`s).
        batch_size: Inputs per actor call (one ONNX Runtime run).
        workers: Actors (default: one per GPU with CUDA, else half the cluster's CPUs).
        address: The Ray cluster to join; default: the Ray started in this process, else a new
            local one.
        threads: ONNX Runtime intra-op threads of each actor, also the CPUs it reserves
            (default: 1 CPU reserved, the node's cores as threads).
        options: Decoder options (e.g. a text encoding).
    """
    ray = ray_module()
    from toolkit_deploy.errors import DecodeError
    from toolkit_deploy.pipeline import Prediction, output_error

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order
    context.max_errored_blocks = 0  # a failed block stops the run; it is never dropped
    context.enable_progress_bars = False  # the scorer shows its own
    items = [{"index": i, "source": str(s) if not isinstance(s, DecodeError) else "",
              "failed": str(s) if isinstance(s, DecodeError) else "",
              "is_path": isinstance(s, (Path, os.PathLike))} for i, s in enumerate(sources)]
    resources = ray.cluster_resources()
    cuda = predictor.device == "cuda"
    if cuda:
        actors = workers or max(1, int(resources.get("GPU", 0)))
        reserve = {"num_gpus": 1, "num_cpus": threads or 1}
    else:
        # Half the CPUs: the other half stays free for Ray's own tasks (reading, splitting
        # blocks); actors that reserve every CPU have been seen to stall a pipeline.
        actors = workers or max(1, int(resources.get("CPU", 1)) // 2)
        reserve = {"num_cpus": threads or 1}
    with warnings.catch_warnings():
        # Ray 2.60 deprecates passing actor options as keywords but has no named parameter for
        # max_restarts / max_task_retries yet; without them a dying actor is retried forever.
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
        dataset = ray.data.from_items(items).map_batches(
            _Scorer,
            # The driver holds the reference for the whole run, so a restarted actor finds
            # the file still there (ray-project/ray#53727).
            fn_constructor_args=(ray.put(predictor.path.read_bytes()), predictor.device,
                                 threads, options),
            batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=actors),
            batch_format="numpy",
            max_restarts=RETRIES, max_task_retries=RETRIES, **reserve)
    for row in dataset.iter_rows():
        index = int(row["index"])
        error = str(row["error"])
        probs = None if error else np.asarray(row["probs"], dtype=np.float32)
        if probs is not None and output_error(probs):  # NaN or Inf: an error row, as locally
            probs, error = None, output_error(probs)
        yield Prediction(index, sources[index], probs, error)
