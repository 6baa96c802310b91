"""`toolkit doctor`: what this environment holds and what it can really run.

Versions come from package metadata (importlib.metadata), so torch and the decoders' libraries are
named without being imported. A provider ONNX Runtime lists is only *available*; it is *usable*
when a session on a tiny model really runs on it (CUDA is listed by onnxruntime-gpu even where
its libraries are missing, and ONNX Runtime then falls back to the CPU with a warning).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Distributions reported, in this order, with what they are for.
PACKAGES = {
    "toolkit-deploy": "the runtime",
    "toolkit": "the training stack",
    "onnx": "export; runtime tests",
    "numpy": "arrays",
    "Pillow": "images",
    "av": "video (PyAV)",
    "tokenizers": "text",
    "soundfile": "audio",
    "soxr": "audio resampling",
    "torch": "training (never imported by the runtime)",
}
INSTALL_RUNTIME = ("pip install 'toolkit-deploy[cpu]' (CPU) or 'toolkit-deploy[gpu]' "
                   "(onnxruntime-gpu, for CUDA); never both")


@dataclass(frozen=True)
class Diagnosis:
    """What `toolkit doctor` found.

    Attributes:
        python: Python version and executable.
        packages: Distribution name → installed version, or None when it is not installed.
        onnxruntime: (name, version) of each distribution providing the `onnxruntime` package.
        available: Execution providers ONNX Runtime lists.
        usable: Providers a session really ran on.
        unusable: Listed providers that could not run a session → why.
        cores: CPU cores this process may use (affinity and cgroup quota).
        errors: Problems that stop the runtime from working as installed.
        warnings: Things worth knowing that do not stop it.
    """

    python: str
    packages: dict[str, str | None]
    onnxruntime: list[tuple[str, str]]
    available: list[str] = field(default_factory=list)
    usable: list[str] = field(default_factory=list)
    unusable: dict[str, str] = field(default_factory=dict)
    cores: int = 1
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["onnxruntime"] = [{"name": n, "version": v} for n, v in self.onnxruntime]
        data["providers"] = {"available": data.pop("available"), "usable": data.pop("usable"),
                             "unusable": data.pop("unusable")}
        return {**data, "ok": self.ok}

    def describe(self) -> str:
        """The report as aligned lines for a terminal."""
        lines = [f"{'python':<16}{self.python}"]
        runtimes = ", ".join(f"{n} {v}" for n, v in self.onnxruntime) or "not installed"
        lines.append(f"{'onnxruntime':<16}{runtimes}")
        for name, version in self.packages.items():
            note = "" if version else "  (not installed)"
            lines.append(f"{name:<16}{version or '-'}{note}  [{PACKAGES[name]}]")
        lines.append(f"{'cores':<16}{self.cores}")
        lines.append(f"{'providers':<16}available: {', '.join(self.available) or 'none'}")
        lines.append(f"{'':<16}usable:    {', '.join(self.usable) or 'none'}")
        lines += [f"{'':<16}{p} is listed but unusable: {why}"
                  for p, why in self.unusable.items()]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append("ok" if self.ok else f"{len(self.errors)} error(s)")
        return "\n".join(lines)


def onnxruntime_problems(distributions: Sequence[str]) -> list[str]:
    """Errors in the set of installed ONNX Runtime distributions (those that provide the
    `onnxruntime` import package): none, or several, which overwrite each other's files so that
    whichever was installed last silently decides the providers."""
    if not distributions:
        return [f"ONNX Runtime is not installed, so no model can run: {INSTALL_RUNTIME}."]
    if len(distributions) > 1:
        names = sorted(distributions)
        keep = "onnxruntime-gpu" if "onnxruntime-gpu" in names else names[0]
        return [f"{' and '.join(names)} are installed together; they ship the same `onnxruntime` "
                "package and overwrite each other's files, so the providers you get depend on "
                f"the install order. Keep one: `pip uninstall -y {' '.join(names)} && pip "
                f"install {keep}`."]
    return []


def package_versions() -> dict[str, str | None]:
    """Version of each of `PACKAGES`, from metadata (nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def provider_status(ort: Any, providers: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Which of `providers` really run a session on a tiny model (usable), and why the others
    do not."""
    from toolkit_deploy.onnxproto import identity_model

    model = identity_model()
    usable, unusable = [], {}
    for provider in providers:
        try:
            used = ort.InferenceSession(model, providers=[provider]).get_providers()
        except Exception as e:  # onnxruntime raises its own types for a provider that fails
            unusable[provider] = f"creating a session failed: {str(e).strip()[:300]}"
            continue
        if provider in used:
            usable.append(provider)
        else:
            unusable[provider] = (f"the session fell back to {used} (its libraries failed to "
                                  "load; see onnxruntime's warnings above)")
    return usable, unusable


def diagnose() -> Diagnosis:
    """Inspect this environment: versions, ONNX Runtime distributions, usable providers."""
    from toolkit_deploy.session import available_cores, onnxruntime_distributions

    runtimes = onnxruntime_distributions()
    warnings: list[str] = []
    available: list[str] = []
    usable: list[str] = []
    unusable: dict[str, str] = {}
    try:
        import onnxruntime as ort
    except ImportError as e:
        ort, failure = None, e
    if ort is None or runtimes:
        errors = onnxruntime_problems([name for name, _ in runtimes])
    else:
        errors = []
        warnings.append("onnxruntime imports, but no installed distribution provides it (built "
                        "from source, or on PYTHONPATH); its version is not known.")
    if ort is None and runtimes:
        errors.append(f"onnxruntime is installed but cannot be imported ({failure}); reinstall "
                      f"it: {INSTALL_RUNTIME}.")
    if ort is not None:
        available = list(ort.get_available_providers())
        usable, unusable = provider_status(ort, available)
    if "CUDAExecutionProvider" in unusable:
        warnings.append("CUDA is listed but unusable: --device cuda will be refused. Install "
                        "the CUDA and cuDNN versions this onnxruntime-gpu needs (see its "
                        "release notes), or use --device cpu.")
    elif "CUDAExecutionProvider" not in available and ort is not None:
        warnings.append("No CUDA provider: this onnxruntime runs on the CPU only (--device cuda "
                        "will be refused). For NVIDIA GPUs install toolkit-deploy[gpu].")
    return Diagnosis(
        python=f"{platform.python_version()} ({sys.executable})",
        packages=package_versions(), onnxruntime=runtimes, available=available, usable=usable,
        unusable=unusable, cores=available_cores(), errors=errors, warnings=warnings)
