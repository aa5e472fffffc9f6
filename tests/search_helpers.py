"""Shared pieces of the search tests: a small real experiment, event-file reading."""

from __future__ import annotations

import os
from pathlib import Path

#: A real search, small enough for seconds per trial on a 2-core CPU:
#: the tiny space, resolution 16, width 0.25, one epoch on 256 built-in images.
SMALL = {
    "space": "tiny",
    "controller": {"name": "evolution", "seed": 0, "settings": {"population": 4, "sample": 2}},
    "objective": {"cost": "macs", "target": 5e6, "w": -0.07},
    "target": {"resolution": 32, "num_classes": 10},
    "proxy": {"epochs": 1, "resolution": 16, "width": 0.25, "batch_size": 64},
    "data": {"kind": "builtin", "train_limit": 256, "holdout": 128},
    "budget": {"samples": 6},
    "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
    # The search stage only (tests of the baseline and verification stages turn them on).
    "baseline": "none",
    "verify": {"top_k": 0},
}


def run_search(*args, **kwargs):
    """``nas.search.stages.run_search`` (the search stage alone), imported on first use."""
    from nas.search.stages import run_search as run

    return run(*args, **kwargs)


def small(tmp_path: Path, **sections) -> dict:
    import copy

    cfg = copy.deepcopy(SMALL)
    cfg["output"] = {"dir": str(tmp_path / "runs"), "name": "t"}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict) and key != "controller":
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def event_tags(folder: Path) -> set[str]:
    """Scalar tags of every TensorBoard event file under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for root, _dirs, files in os.walk(folder):
        if any(f.startswith("events.out.tfevents") for f in files):
            acc = EventAccumulator(root)
            acc.Reload()
            tags.update(acc.Tags().get("scalars", []))
    return tags
