"""Batch scoring across machines on Ray Data (the `ray` extra): `toolkit score … --ray [ADDRESS]`.

The driver lists the inputs exactly as a local run does; Ray Data spreads them over a pool of
actors, each holding one ONNX Runtime session (created once per actor) and the runtime's decoder,
and streams the predictions back in input order into the same table writer as a local run (so the
table is committed in chunks and the summary is written beside it). The model file travels through
Ray's object store; the inputs must be readable at the same paths on every node (a shared file
system), as for any Ray Data job over files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

INSTALL = "pip install 'toolkit-deploy[ray]'"


class _Scorer:
    """A Ray actor: one Predictor, built once from the model file in the object store; scores
    batches of sources."""

    def __init__(self, model: Any, options: dict[str, Any]) -> None:
        import ray

        from toolkit_deploy.predictor import Predictor

        folder = tempfile.mkdtemp(prefix="toolkit-ray-")
        path = Path(folder, "model.onnx")
        path.write_bytes(ray.get(model))  # the model file, from the object store
        self.predictor = Predictor(path, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from toolkit_deploy.errors import DecodeError
        from toolkit_deploy.pipeline import decode_chunk, predict_arrays

        sources = [DecodeError(e) if e else (Path(s) if f else s) for s, e, f in zip(
            batch["source"], batch["failed"], batch["is_path"], strict=True)]
        decoded = decode_chunk(self.predictor.decoder, sources)
        good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
        width = len(self.predictor.labels)
        probs = np.full((len(sources), width), np.nan, np.float32)
        if good:
            probs[good] = predict_arrays(self.predictor, [decoded[i] for i in good])
        errors = ["" if isinstance(d, np.ndarray) else d for d in decoded]
        return {"index": batch["index"], "probs": probs, "error": np.array(errors, dtype=object)}


def ray_predictions(model: Path, sources: list[Any], batch_size: int, workers: int | None,
                    address: str | None, options: dict[str, Any]):
    """Yield `Prediction`s of `sources`, in order, computed by a pool of Ray actors."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ImportError(f"--ray needs Ray Data: {INSTALL}") from e
    from toolkit_deploy.errors import DecodeError
    from toolkit_deploy.pipeline import Prediction

    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order
    items = [{"index": i, "source": str(s) if not isinstance(s, DecodeError) else "",
              "failed": str(s) if isinstance(s, DecodeError) else "",
              "is_path": isinstance(s, (Path, os.PathLike))} for i, s in enumerate(sources)]
    actors = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // 2)
    dataset = ray.data.from_items(items).map_batches(
        _Scorer, fn_constructor_args=(ray.put(model.read_bytes()), options),
        batch_size=batch_size, concurrency=actors, batch_format="numpy")
    for row in dataset.iter_rows():
        index = int(row["index"])
        error = str(row["error"])
        probs = None if error else np.asarray(row["probs"], dtype=np.float32)
        yield Prediction(index, sources[index], probs, error)
