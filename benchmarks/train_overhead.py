"""What `toolkit train` costs over a minimal hand-written PyTorch loop, as a ratio in one run.

Both train the same model (the image-cnn recipe's network), with the same batch size, threads,
optimizer and schedule, on the same generated images, and validate once per epoch. The
hand-written loop holds the decoded images in memory; toolkit reads its files through the runtime
decoder every epoch (or from memory with data.cache), and adds its bookkeeping: metrics, best/last
weights, checkpoints. Runs alternate, toolkit first, to share the machine's noise.

    python benchmarks/train_overhead.py --epochs 3 --repeats 2

Target: toolkit seconds per epoch <= 1.10 x the hand-written loop's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from toolkit.demo.shapes import make_shapes
from toolkit.models import create_model
from toolkit.recipe import load_recipe
from toolkit.training.data import make_split
from toolkit.training.optim import create_optimizer, lr_factor
from toolkit.training.trainer import train
from toolkit_deploy.decoders import create_decoder


def hand_written(recipe, data: Path, epochs: int) -> list[float]:
    """A minimal loop: decoded tensors in memory, shuffle, forward, backward, step, validate.

    Returns the wall seconds of each epoch."""
    decoder = create_decoder("image", recipe.data.preprocess())
    split = make_split(data, decoder.extensions, recipe.data.val_fraction,
                       recipe.data.test_fraction, recipe.train.seed)

    def tensors(items):
        x = torch.from_numpy(np.stack([decoder(data / p) for p, _ in items]))
        return x, torch.tensor([t for _, t in items])

    (x, y), (vx, _) = tensors(split.train), tensors(split.val)
    torch.manual_seed(recipe.train.seed)
    model = create_model(recipe, len(split.classes))
    opt = create_optimizer(model, recipe.optim)
    bs, times = recipe.train.batch_size, []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(x))
        steps = -(-len(x) // bs)
        for step, i in enumerate(range(0, len(x), bs)):
            for g in opt.param_groups:
                g["lr"] = recipe.optim.lr * lr_factor(recipe.optim, epoch - 1 + step / steps,
                                                      epochs)
            idx = order[i : i + bs]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for i in range(0, len(vx), bs):
                model(vx[i : i + bs])
        times.append(time.perf_counter() - t0)
    return times


def with_toolkit(recipe, data: Path, out: Path) -> tuple[list[float], float]:
    """Wall seconds of each epoch (from the run's metrics) and of the whole run."""
    t0 = time.perf_counter()
    train(recipe, data, out, device="cpu", overwrite=True, progress=False)
    wall = time.perf_counter() - t0
    epochs = [json.loads(line)["seconds"]
              for line in (out / "metrics.jsonl").read_text().splitlines()]
    return epochs, wall



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Recipe overrides for both loops (e.g. data.cache=true).")
    args = parser.parse_args()

    from toolkit.recipe import parse_override

    overrides = {"train.epochs": args.epochs, "data.flip": "none", "optim.warmup_epochs": 0,
                 **dict(parse_override(s) for s in args.set)}
    recipe = load_recipe("image-cnn", overrides)
    ours, theirs, walls, cpu_ours, cpu_theirs = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_shapes(data, per_class=args.per_class, seed=7)
        for r in range(args.repeats):
            # Process CPU time is less sensitive than wall time to other load on the machine.
            cpu = time.process_time()
            epochs, wall = with_toolkit(recipe, data, Path(tmp) / f"run{r}")
            cpu_ours.append(time.process_time() - cpu)
            ours += epochs[1:]  # the first epoch of each run warms caches for both
            walls.append(wall / args.epochs)
            cpu = time.process_time()
            theirs += hand_written(recipe, data, args.epochs)[1:]
            cpu_theirs.append(time.process_time() - cpu)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.per_class * 5} images, batch {recipe.train.batch_size}, "
          f"{args.epochs} epochs x {args.repeats} repeats, overrides {overrides}")
    print(f"hand-written loop   {b:7.3f} s/epoch (median wall)")
    print(f"toolkit train       {a:7.3f} s/epoch (median wall; train + validation)")
    print(f"toolkit wall/epoch  {statistics.median(walls):7.3f} s (setup, split, "
          "fingerprint and final test included)")
    print(f"ratio toolkit / hand-written = {a / b:.3f}   (wall per epoch; target <= 1.10)")
    ca, cb = statistics.median(cpu_ours), statistics.median(cpu_theirs)
    print(f"ratio toolkit / hand-written = {ca / cb:.3f}   (process CPU time of whole runs, "
          f"{ca:.1f} s vs {cb:.1f} s; both include decoding, toolkit also its final test)")


if __name__ == "__main__":
    main()
