"""What a packaged model costs to ship and to start, against the training stack, in one run.

- Installed size: a fresh environment with only `pip install --find-links DIST NAME` (the
  runtime-only package) against the training environment running this script.
- Cold start and peak memory (a new process, until the first prediction is written): `NAME score`
  on one file, against the same prediction through PyTorch from the run folder (import torch and
  toolkit, rebuild the model from the run, decode the file with the runtime's decoder, predict).

Targets: cold start ≤ 1/4 of the PyTorch path; runtime environment ≤ 1/5 of the training one.

    python benchmarks/footprint.py                 # trains a small image-cnn run first
    python benchmarks/footprint.py --run demo/run --model demo/model.onnx
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def site_packages(prefix: Path) -> Path:
    return next(prefix.glob("lib/python*/site-packages"))


#: Starts a command from a small process and reports its wall time and peak memory. (Linux keeps
#: a process's peak across exec, so a child forked from this large process would report ours.)
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the command's output is not ours
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, status)
"""


def measure(args: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one new process running `args`."""
    done = subprocess.run(["/usr/bin/env", "python3", "-c", _LAUNCHER, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=True)
    seconds, peak_kib, status = done.stdout.split()
    if status != "0":
        raise RuntimeError(f"{args[:3]} failed (status {status}): {done.stderr[-2000:]}")
    return float(seconds), int(peak_kib) / 1024


def small_run(folder: Path) -> tuple[Path, Path]:
    from score import demo_run  # benchmarks/score.py: this folder is on sys.path when run

    return demo_run(folder, "shapes", "image-cnn", 20, {"train.epochs": 1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="A training run folder (with --model, its export).")
    parser.add_argument("--model", help="The run's exported model.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from toolkit.packaging import package_model
    from toolkit.run import load_run
    from toolkit_deploy.decoders import decoder_extensions

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir, model = ((Path(args.run).resolve(), Path(args.model).resolve()) if args.run
                          else small_run(tmp))
        run = load_run(run_dir)
        sample = next(p for p in sorted(run.data_dir.rglob("*"))
                      if p.suffix.lower() in decoder_extensions(run.recipe.modality))
        package_model(model, tmp / "dist", "footprint_model")
        env_dir = tmp / "env"
        venv.EnvBuilder(with_pip=True).create(env_dir)
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--find-links", str(tmp / "dist"),
                        "footprint_model"], check=True, env=clean, cwd=tmp)
        runtime_size = tree_bytes(site_packages(env_dir))
        training_size = tree_bytes(site_packages(Path(sys.prefix)))

        packaged = [str(env_dir / "bin" / "footprint_model"), "score", str(sample), "--out",
                    str(tmp / "p.csv"), "--overwrite", "-q"]
        torch_path = [sys.executable, "-c", (
            "import sys, torch\n"
            "from toolkit.run import load_run\n"
            "from toolkit_deploy.decoders import create_decoder\n"
            f"run = load_run({str(run_dir)!r})\n"
            "model = run.load_model()\n"
            "decoder = create_decoder(run.recipe.modality, run.preprocess(),"
            " **run.recipe.data.decoder_options)\n"
            f"x = torch.from_numpy(decoder({str(sample)!r})[None])\n"
            "with torch.no_grad():\n"
            "    print(run.labels[int(model(x).argmax(1))])\n")]
        results: dict[str, list[tuple[float, float]]] = {"package": [], "torch": []}
        for _ in range(args.repeats):  # alternate, so that load drifts hit both alike
            results["package"].append(measure(packaged, tmp, clean))
            results["torch"].append(measure(torch_path, tmp, dict(os.environ)))

    best = {k: (min(s for s, _ in v), max(m for _, m in v)) for k, v in results.items()}
    print(f"model {model.name} ({run.recipe.modality}), one file, best of {args.repeats} cold "
          "starts (peak memory: the largest seen)")
    print(f"installed size   runtime-only {runtime_size / 2**20:8.1f} MiB   training "
          f"{training_size / 2**20:8.1f} MiB   ratio {runtime_size / training_size:.3f} "
          "(target <= 0.2)")
    print(f"cold start       package {best['package'][0]:8.2f} s     PyTorch  "
          f"{best['torch'][0]:8.2f} s     ratio {best['package'][0] / best['torch'][0]:.3f} "
          "(target <= 0.25)")
    print(f"peak memory      package {best['package'][1]:8.1f} MiB   PyTorch  "
          f"{best['torch'][1]:8.1f} MiB   ratio {best['package'][1] / best['torch'][1]:.3f}")


if __name__ == "__main__":
    main()
