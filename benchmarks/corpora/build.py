"""Build the real benchmark corpora into one folder: OUT/<corpus>/{train,test}/<class>/<file>.

    python benchmarks/corpora/build.py OUT                       # every corpus
    python benchmarks/corpora/build.py OUT --only man-en,glyphs  # some of them

A corpus whose folder already holds a `corpus.json` is kept (delete the folder to rebuild it).
Each corpus says which Debian packages it reads and refuses to start, naming the `apt-get install`
command, when one is missing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/: `corpora` package

from corpora import MODULES, corpus_module  # noqa: E402  (after the path is set)


def missing_packages(packages: tuple[str, ...]) -> list[str]:
    """The Debian packages of `packages` that are not installed."""
    missing = []
    for package in packages:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def build(name: str, out: Path) -> dict:
    """Build corpus `name` at `out` (staged next to it, moved into place when complete)."""
    manifest = out / "corpus.json"
    if manifest.exists():
        return json.loads(manifest.read_text(encoding="utf-8"))
    module = corpus_module(name)
    missing = missing_packages(module.REQUIRES)
    if missing:
        raise SystemExit(f"Corpus {name} reads Debian packages that are not installed: "
                         f"{', '.join(missing)}. Install them with: apt-get install -y "
                         f"{' '.join(missing)}")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    started = time.perf_counter()
    info = module.build(staging)
    info = {"name": name, "modality": module.MODALITY, **info,
            "build_seconds": round(time.perf_counter() - started, 1)}
    (staging / "corpus.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--only", default=",".join(MODULES),
                        help=f"Comma-separated corpora (default: all of {', '.join(MODULES)}).")
    args = parser.parse_args()
    for name in args.only.split(","):
        info = build(name, args.out / name)
        counts = {split: sum(info["files"][split].values()) for split in ("train", "test")}
        print(f"{name:<14} {info['modality']:<6} {len(info['classes']):>3} classes  "
              f"train {counts['train']:>5}  test {counts['test']:>5}  ({info['build_seconds']} s)")


if __name__ == "__main__":
    main()
