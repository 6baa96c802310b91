"""`toolkit doctor` and the honesty of device errors: what is installed, what really runs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from toolkit_deploy import Predictor
from toolkit_deploy.cli import main
from toolkit_deploy.doctor import diagnose, onnxruntime_problems, provider_status
from toolkit_deploy.errors import DeviceError
from toolkit_deploy.onnxproto import identity_model
from toolkit_deploy.session import describe_onnxruntime, onnxruntime_distributions


@pytest.mark.parametrize("installed", [["onnxruntime"], ["onnxruntime-gpu"]])
def test_one_onnxruntime_is_fine(installed: list[str]) -> None:
    assert onnxruntime_problems(installed) == []


def test_cpu_and_gpu_onnxruntime_together_are_an_error_with_the_fix() -> None:
    [problem] = onnxruntime_problems(["onnxruntime-gpu", "onnxruntime"])
    assert problem.startswith("onnxruntime and onnxruntime-gpu are installed together")
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in problem


def test_no_onnxruntime_is_an_error_naming_the_extras() -> None:
    [problem] = onnxruntime_problems([])
    assert "not installed" in problem and "toolkit-deploy[cpu]" in problem


def test_the_identity_model_runs() -> None:
    session = ort.InferenceSession(identity_model(), providers=["CPUExecutionProvider"])
    x = np.array([3.5], np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x)


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_a_listed_provider_that_cannot_run_is_unusable() -> None:
    """ONNX Runtime falls back to the CPU for a provider it cannot load: that one is unusable."""
    usable, unusable = provider_status(ort, ["NoSuchExecutionProvider", "CPUExecutionProvider"])
    assert usable == ["CPUExecutionProvider"]
    assert "fell back to ['CPUExecutionProvider']" in unusable["NoSuchExecutionProvider"]


def test_diagnose_reports_this_environment() -> None:
    found = diagnose()
    assert found.ok, found.errors
    assert found.packages["numpy"] == version("numpy") == np.__version__
    assert found.packages["toolkit-deploy"] == version("toolkit-deploy")
    names = [name for name, _ in found.onnxruntime]
    assert names == [name for name, _ in onnxruntime_distributions()]
    assert dict(found.onnxruntime)[names[0]] == ort.__version__
    assert found.available == ort.get_available_providers()
    assert "CPUExecutionProvider" in found.usable
    assert set(found.usable) | set(found.unusable) == set(found.available)
    cuda = "CUDAExecutionProvider"
    if cuda not in found.available:
        assert any("No CUDA provider" in w for w in found.warnings)


def test_doctor_command_text_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["doctor"])
    assert text.exit_code == 0, text.output
    assert f"onnxruntime     {describe_onnxruntime().replace(' and ', ', ')}" in text.output
    assert "usable:    " in text.output and "CPUExecutionProvider" in text.output
    assert text.output.rstrip().endswith("ok")
    result = runner.invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) >= {"python", "packages", "onnxruntime", "providers", "cores", "errors",
                           "warnings", "ok"}
    assert report["ok"] is True and report["errors"] == []
    assert set(report["providers"]) == {"available", "usable", "unusable"}
    assert report["packages"]["Pillow"] == version("Pillow")
    assert report["onnxruntime"][0]["version"] == ort.__version__


def test_doctor_in_a_fresh_interpreter_never_imports_torch() -> None:
    code = ("import json, sys\n"
            "from toolkit_deploy.cli import main\n"
            "try:\n"
            "    main(['doctor', '--json'])\n"
            "except SystemExit as e:\n"
            "    code = e.code\n"
            "print(json.dumps({'code': code, 'torch': sorted(m for m in sys.modules\n"
            "                  if m.split('.')[0] == 'torch')}))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    *report, last = result.stdout.strip().splitlines()
    assert json.loads(last) == {"code": 0, "torch": []}
    assert json.loads("\n".join(report))["ok"] is True


def test_cuda_where_it_cannot_run_names_the_package_and_providers(colour_model: Path) -> None:
    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider"
    usable, _ = provider_status(ort, [cuda]) if cuda in available else ([], {})
    if usable:
        assert Predictor(colour_model, device="cuda").providers[0] == cuda
        return
    with pytest.raises(DeviceError) as caught:
        Predictor(colour_model, device="cuda")
    message = str(caught.value)
    assert describe_onnxruntime() in message and ort.__version__ in message
    assert "toolkit doctor" in message
    if cuda in available:  # onnxruntime-gpu without working CUDA libraries
        assert "CUDA libraries" in message and "['CPUExecutionProvider']" in message
    else:
        assert f"its providers are {available}" in message and "onnxruntime-gpu" in message
