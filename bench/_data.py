"""Where the proxy benchmarks find their default data: cifar10_small.npz in the git-ignored
``data/`` folder of the repository, or in ``../shared/data`` beside it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks import the packages from the checkout

CANDIDATES = (ROOT / "data" / "cifar10_small.npz", ROOT.parent / "shared" / "data" / "cifar10_small.npz")


def default_data() -> str | None:
    """The first candidate that exists, else None (the benchmark then uses the built-in data)."""
    return next((str(p) for p in CANDIDATES if p.is_file()), None)


def npz_overrides(path: str | None, holdout: str = "2000") -> list[str]:
    """``--set`` overrides that read ``path`` as an npz dataset, ``holdout`` images (or a fraction) held out."""
    return ["data.kind=npz", f"data.path={path}", f"data.holdout={holdout}"] if path else []
