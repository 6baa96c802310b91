"""What every demo-data maker shares: checking its arguments and its output folder."""

from __future__ import annotations

from pathlib import Path


def check_maker_args(maker: str, out: Path, per_class: int, seed: int) -> Path:
    """Validate the arguments every maker shares; returns `out` as a Path.

    Raises:
        ValueError: If per_class is not an int >= 1 or seed is not an int >= 0.
        FileExistsError: If `out` is a file or a non-empty folder.
    """
    # bool is an int subclass, but per_class=True is surely a mistake.
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1. Got {per_class!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0. Got {seed!r}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, but {maker} needs a folder. "
                              "Choose another path or delete the file.")
    if out.is_dir():
        found = sorted(p.name for p in out.iterdir())
        if found:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise FileExistsError(
                f"{out} is not empty (found {len(found)} entries: {shown}); {maker} "
                "will not mix a new dataset with old files. Choose another folder or delete it."
            )
    return out

