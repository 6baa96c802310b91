"""Default exports load in older ONNX Runtime releases: the file declares the lowest IR version
its opsets need, and ONNX Runtime 1.16.3 (a separate virtual environment, built by this test)
gives the same logits as the current release.

The environment is `.venv-ort116/` at the top of the repository (ignored by git), created on the
first run with `pip install onnxruntime==1.16.3 'numpy<2'` (about 40 s here) and reused after.
The test is skipped, with the reason printed, only when pip cannot reach the package registry;
any other failure to build it fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.toolkit.conftest import Trained
from toolkit_deploy.predictor import Predictor

OLD_ORT = "1.16.3"
VENV = Path(__file__).resolve().parents[2] / ".venv-ort116"
#: What pip prints when it cannot reach the registry (the only reason to skip).
_OFFLINE = ("NewConnectionError", "Failed to establish a new connection", "Max retries exceeded",
            "Temporary failure in name resolution", "Network is unreachable",
            "ProxyError", "ConnectTimeoutError", "ReadTimeoutError")

RUN_OLD = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
logits, probs = session.run(None, {"input": np.load(sys.argv[2])})
np.save(sys.argv[3], logits)
print(ort.__version__)
"""


def old_runtime_python() -> Path:
    """The interpreter of the ONNX Runtime 1.16.3 environment, built on first use."""
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{OLD_ORT}"
    if marker.is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"onnxruntime=={OLD_ORT}", "numpy<2"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_RETRIES": "1"})
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if any(sign in output for sign in _OFFLINE):
            message = (f"SKIP: pip cannot reach the package registry to install onnxruntime=="
                       f"{OLD_ORT} into {VENV}: {output.strip().splitlines()[-1]}")
            print(message)
            pytest.skip(message)
        raise AssertionError(f"Could not build {VENV}:\n{output}")
    marker.touch()
    return python


@pytest.mark.slow
def test_default_export_loads_and_agrees_in_onnxruntime_1_16(trained: Trained,
                                                            tmp_path: Path) -> None:
    model = trained.export.path
    proto = onnx.load(model)
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    assert opsets["ai.onnx"] == 18
    # The lowest IR version opset 18 needs (onnx 1.13's), not the exporter's 10 or newer.
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(
        list(proto.opset_import), ignore_unknown=True) == 8
    assert all(not n.metadata_props for n in proto.graph.node)  # IR 10 fields, dropped

    predictor = Predictor(model)
    files = sorted(trained.data.rglob("*.png"))[:8]
    batch = np.stack([predictor.decode(f) for f in files])
    np.save(tmp_path / "batch.npy", batch)
    current = predictor.session.run(None, {"input": batch})[0]

    python = old_runtime_python()
    result = subprocess.run([str(python), "-c", RUN_OLD, str(model), str(tmp_path / "batch.npy"),
                             str(tmp_path / "old.npy")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == OLD_ORT
    old = np.load(tmp_path / "old.npy")
    np.testing.assert_allclose(old, current, rtol=1e-4, atol=1e-5)
    assert (old.argmax(1) == current.argmax(1)).all()
