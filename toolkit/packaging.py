"""`package_model`: one model file → standard wheels that install a runtime-only package.

DIST gets two wheels: the model's (package NAME: the `.onnx` file, its sha256, a model card as
the wheel's description, `NAME.load()` and the `NAME` command) and the runtime's (toolkit-deploy,
built from the installed runtime). The runtime is a dependency rather than vendored into the
model's wheel: several model packages then share one runtime in an environment (vendored copies
of `toolkit_deploy` would overwrite each other), and a runtime fix needs no model rebuilt. The
model wheel requires exactly the runtime extras its modality needs, with `cpu` (onnxruntime) or
`gpu` (onnxruntime-gpu).

Wheels are written directly (they are zip files with a fixed layout, PEP 427), so packaging needs
no build backend and no network. Both are written under temporary names and moved into DIST
together once both are complete, so a failure (a full disk) leaves DIST as it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import toolkit_deploy
from toolkit_deploy.info import describe
from toolkit_deploy.packaged import sha256_of
from toolkit_deploy.writing import output_errors

#: Runtime extras each modality needs besides ONNX Runtime.
MODALITY_EXTRAS = {"image": [], "text": ["text"], "audio": ["audio"], "video": ["video"]}
#: A distribution name as users type it (`digits-clf`, `shapes_model`): lower-case letters and
#: digits, words joined by one hyphen or underscore.
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_VERSION = re.compile(r"^\d+(\.\d+)*([ab]|rc)?\d*$")
#: Longest name and version: the wheel's file name (`NAME-VERSION-py3-none-any.whl.partial`) and
#: its paths must stay far below the 255-byte file-name limit of common file systems.
MAX_NAME, MAX_VERSION = 64, 32
#: Import names the model's package must not take: Python would then import it instead of the
#: module the runtime needs, in every program of that environment (`site` and `sitecustomize`
#: even at start-up). The runtime's own packages and those of its dependencies and extras
#: (deploy/pyproject.toml); the standard library is `sys.stdlib_module_names`.
RESERVED_IMPORTS = frozenset({
    "toolkit", "toolkit_deploy", "site", "sitecustomize", "usercustomize",
    "numpy", "PIL", "click", "tqdm", "onnxruntime", "onnx", "tokenizers", "soundfile",
    "_soundfile", "_soundfile_data", "soxr", "av", "pyarrow", "ray", "cffi", "pycparser",
    "colorama", "packaging", "pip", "setuptools", "pkg_resources", "wheel", "_distutils_hack",
})
#: Distribution names (PEP 503 normalised) taken by the runtime and its dependencies.
RESERVED_DISTRIBUTIONS = frozenset({
    "toolkit", "toolkit-deploy", "numpy", "pillow", "click", "tqdm", "onnxruntime",
    "onnxruntime-gpu", "onnx", "tokenizers", "soundfile", "soxr", "av", "pyarrow", "ray",
    "cffi", "pycparser", "pip", "setuptools", "wheel",
})
#: A fixed timestamp for every file: the same inputs give the same wheel bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Packaged:
    model_wheel: Path
    runtime_wheel: Path
    requires: tuple[str, ...]


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def write_wheel(dist: Path, name: str, version: str, files: dict[str, bytes],
                metadata_text: str, entry_points: str = "") -> tuple[Path, Path]:
    """Write the wheel `name-version-py3-none-any.whl` holding `files` (archive path → bytes)
    into `dist` under a temporary name; returns that file and the wheel's path, to move it to.

    Raises:
        OutputError: It cannot be written (nothing is left behind).
    """
    info = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{info}/METADATA"] = metadata_text.encode()
    files[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: toolkit\nRoot-Is-Purelib: true\n"
                              b"Tag: py3-none-any\n")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = dist / f"{name}-{version}-py3-none-any.whl"
    tmp = path.with_name(path.name + ".partial")
    try:
        with output_errors(tmp, path), zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as wheel:
            for arcname, data in files.items():
                wheel.writestr(zipfile.ZipInfo(arcname, _EPOCH), data, zipfile.ZIP_DEFLATED)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, path


def runtime_wheel(dist: Path) -> tuple[Path, Path]:
    """The toolkit-deploy wheel, built from the runtime installed here (its files and metadata),
    under a temporary name: see `write_wheel`."""
    meta = metadata.metadata("toolkit-deploy")
    version = meta["Version"]
    root = Path(toolkit_deploy.__file__).parent
    files = {f"toolkit_deploy/{p.relative_to(root).as_posix()}": p.read_bytes()
             for p in sorted(root.rglob("*.py"))}
    lines = ["Metadata-Version: 2.1", "Name: toolkit-deploy", f"Version: {version}",
             f"Summary: {meta['Summary']}", f"Requires-Python: {meta['Requires-Python']}"]
    lines += [f"Provides-Extra: {e}" for e in meta.get_all("Provides-Extra") or []]
    lines += [f"Requires-Dist: {r}" for r in meta.get_all("Requires-Dist") or []]
    text = "\n".join(lines) + "\nDescription-Content-Type: text/markdown\n\n" + (
        meta.get_payload() or "")
    return write_wheel(dist, "toolkit_deploy", version, files, text,
                       "[console_scripts]\ntoolkit = toolkit_deploy.cli:main\n")


def model_card(name: str, version: str, info: dict, sha256: str, gpu: bool) -> str:
    """The model wheel's description: what the model is, how good, how proven, how to call it."""
    parity = info["parity"] or {}
    prov = info["provenance"]
    results = prov.get("results") or {}
    figures = (f"{results.get('split', '?')} split: {results.get('n_samples', '?')} samples, "
               f"accuracy {results.get('accuracy', float('nan')):.4f}, macro F1 "
               f"{results.get('macro_f1', float('nan')):.4f}" if results else "not recorded")
    inputs = "; ".join(f"`{t['name']}` {t['dtype']} {t['shape']}" for t in info["inputs"])
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())
    device = "cuda" if gpu else "cpu"
    article = "An" if info["modality"][0] in "aeiou" else "A"
    runtime = ("onnxruntime-gpu: it runs on CUDA and refuses to start without it" if gpu
               else "onnxruntime")
    proof = (f"{'passed' if parity.get('passed') else 'NOT passed'} on "
             f"{parity.get('n_samples', '?')} held-out samples: top-1 agreement "
             f"{parity.get('top1_agreement', '?')}, max abs logit difference "
             f"{parity.get('max_abs_diff', '?')}")
    return f"""# {name} {version}

{article} {info['modality']} classifier packaged by toolkit: the ONNX model and a torch-free runtime
({runtime}).

| | |
| --- | --- |
| labels | {', '.join(info['labels'])} |
| input | {inputs} |
| outputs | `logits`, `probabilities` (N × {len(info['labels'])}) |
| preprocessing | {json.dumps(info['preprocess'], ensure_ascii=False)} |
| held-out figures | {figures} |
| parity with PyTorch | {proof} |
| recipe | {prov.get('recipe', {}).get('name', '?')} (best epoch {prov.get('best_epoch', '?')}) |
| made by | {versions} |
| model sha256 | `{sha256}` (checked at every load) |

## Use

```bash
pip install --find-links DIST {name}
{name} score INPUT --out predictions.csv     # the options and columns of `toolkit score`
{name} info                                   # this card's facts, from the model itself
```

```python
import {name.replace("-", "_")}
model = {name.replace("-", "_")}.load()          # a toolkit_deploy.Predictor, on {device}
model.predict([...])
```
"""


def import_name(name: str) -> str:
    """The import name of the model package called `name` (`digits-clf` → `digits_clf`), after
    checking `name` is one a wheel, an import and a command can all carry.

    Raises:
        ValueError: The name is malformed, too long, or shadows the standard library, the
            runtime or one of its dependencies.
    """
    shown = f"{name[:80]!r}{'…' if len(name) > 80 else ''}"
    if len(name) > MAX_NAME:
        raise ValueError(f"--name is {len(name)} characters long; at most {MAX_NAME} are "
                         f"allowed (it becomes file names inside the wheel). Got {shown}.")
    if not _NAME.match(name):
        raise ValueError(
            f"--name must be lower-case letters and digits, starting with a letter, with words "
            f"joined by single hyphens or underscores (e.g. digits-clf or digits_clf): it is "
            f"the distribution and the command name, and its import name has underscores for "
            f"hyphens. Got {shown}.")
    module = name.replace("-", "_")
    normalised = re.sub(r"[-_.]+", "-", name)
    # Compared without case: on case-insensitive file systems (macOS, Windows) `pil` is `PIL`.
    if normalised in RESERVED_DISTRIBUTIONS or module in {m.lower() for m in RESERVED_IMPORTS}:
        raise ValueError(f"--name {name!r} is taken by the toolkit's runtime or one of its "
                         f"dependencies: installing it would replace or shadow that package. "
                         f"Choose another, e.g. {module}_model.")
    if module in {m.lower() for m in sys.stdlib_module_names}:
        raise ValueError(f"--name {name!r} would be imported as {module!r}, which shadows the "
                         f"standard library module of that name (every program in the "
                         f"environment would import the model instead). Choose another, e.g. "
                         f"{module}_model.")
    return module


def package_model(model: str | os.PathLike, dist: str | os.PathLike, name: str,
                  version: str = "0.1.0", gpu: bool = False) -> Packaged:
    """Build the model's wheel and the runtime's wheel into `dist`.

    Args:
        model: A toolkit model file (`toolkit export`).
        dist: Folder for the wheels (created if needed).
        name: Package, import and command name (lower-case letters, digits, underscores).
        version: The model package's version.
        gpu: Depend on onnxruntime-gpu (and run on CUDA by default) instead of onnxruntime.

    Raises:
        ValueError: A bad name or version.
        ModelFormatError: `model` is not a toolkit model.
        OutputError: A wheel cannot be written; `dist` is left as it was.
    """
    module = import_name(name)
    if not _VERSION.match(version) or len(version) > MAX_VERSION:
        raise ValueError(f"--version must look like 1.2.0 (at most {MAX_VERSION} characters). "
                         f"Got {version[:80]!r}{'…' if len(version) > 80 else ''}.")
    model = Path(model)
    info = describe(model)  # validates the file and its metadata
    if (model.parent / f"{model.name}.data").exists():
        raise ValueError(f"{model} keeps its weights in external data; packaging supports "
                         "single-file models only.")
    dist = Path(dist)
    with output_errors(dist, dist):
        dist.mkdir(parents=True, exist_ok=True)
    sha256 = sha256_of(model)
    device = "cuda" if gpu else "cpu"
    extras = ",".join(["gpu" if gpu else "cpu", *MODALITY_EXTRAS[info["modality"]]])
    runtime_version = metadata.version("toolkit-deploy")
    # The model package runs wherever its runtime does, so it declares the runtime's Pythons.
    python = metadata.metadata("toolkit-deploy")["Requires-Python"]
    requires = (f"toolkit-deploy[{extras}]=={runtime_version}",)
    # The labels come from the model file: written as a Python literal (repr), never pasted
    # into source, so no label (a quote, a backslash) can break or inject code.
    doc = (f"{module}: a {info['modality']} classifier packaged by toolkit (labels: "
           f"{', '.join(info['labels'])}). `{module}.load()` gives a ready Predictor.")
    init = f'''{doc!r}

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

__version__ = "{version}"
MODEL_SHA256 = "{sha256}"
DEVICE = "{device}"


def model_path() -> Path:
    """The packaged model file."""
    return Path(str(files(__name__) / "model.onnx"))


def load(device: str = DEVICE, threads: int | None = None, **decoder_options: Any) -> Any:
    """A ready `toolkit_deploy.Predictor` for the packaged model, after checking its sha256."""
    from toolkit_deploy.packaged import load_checked

    return load_checked(model_path(), MODEL_SHA256, device, threads, **decoder_options)
'''
    cli = f'''"""The `{name}` command: `{name} score INPUT --out preds.csv`, `{name} info`."""

from toolkit_deploy.packaged import package_cli

from {module} import DEVICE, MODEL_SHA256, __version__, load, model_path

main = package_cli("{name}", __version__, load, model_path, MODEL_SHA256, DEVICE)
'''
    card = model_card(name, version, info, sha256, gpu)
    files = {f"{module}/__init__.py": init.encode(), f"{module}/cli.py": cli.encode(),
             f"{module}/model.onnx": model.read_bytes(),
             f"{module}/MODEL_CARD.md": card.encode()}
    meta = "\n".join([
        "Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
        f"Summary: {info['modality']} classifier ({len(info['labels'])} labels), packaged by "
        "toolkit", f"Requires-Python: {python}", *[f"Requires-Dist: {r}" for r in requires],
        "Description-Content-Type: text/markdown", "", card])
    staged: list[tuple[Path, Path]] = []
    try:
        # The wheel's file and dist-info names escape the hyphens (PEP 427); its Name is as given.
        staged.append(write_wheel(dist, module, version, files, meta,
                                  f"[console_scripts]\n{name} = {module}.cli:main\n"))
        staged.append(runtime_wheel(dist))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in staged:  # both complete: only now is an earlier wheel replaced
        os.replace(tmp, path)
    return Packaged(staged[0][1], staged[1][1], requires)
