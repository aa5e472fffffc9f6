"""What a resumed search may change, where it runs, and how a controller learns from recorded trials.

A search is resumed in its run dir, wherever that dir now is (moved or copied):
the run dir's ``config.yaml`` is the experiment, its location the output.

On resume only the keys in :data:`MAY_CHANGE` may differ from the stored
``config.yaml`` (a bigger budget, a longer time limit, wider cost bounds, the
resources and Ray to run on); anything else (recipe, space, objective, data,
seed, ...) would mix two searches in one run dir and is refused with one line
listing the changed keys.  Budgets may grow, not shrink.

Without Ray Tune's state (deleted, or a budget grown past a finished search)
the search continues with a fresh controller seeded from ``trials.jsonl``
(:func:`seed_controller`): every recorded genotype is learned from and never
proposed again.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import yaml

from search_spaces import Genotype

from ..config import ConfigError
from . import results
from .trial import TrialResult

logger = logging.getLogger(__name__)

#: Keys a resumed search may change, and the ones that rebuild the controller (its constraint).
MAY_CHANGE = ("budget.samples", "budget.time_limit_s", "controller.cost_min", "controller.cost_max",
              "controller.max_tries", "resources.cpus_per_trial", "resources.gpus_per_trial",
              "resources.num_cpus", "resources.num_gpus", "proxy.threads", "ray.address", "ray.dashboard",
              "ray.connect_timeout_s")
NEW_CONTROLLER = ("controller.cost_min", "controller.cost_max", "controller.max_tries")
#: Where the run is: taken from the run dir's location, never compared.
_LOCATION = ("output.dir", "output.name")
_GROW_ONLY = ("budget.samples", "budget.time_limit_s")


def relocated(experiment, run_dir: Path):
    """``experiment`` with its output at ``run_dir`` (a moved or copied run dir resumes where it is)."""
    run_dir = Path(run_dir).expanduser().resolve()
    output = dataclasses.replace(experiment.output, dir=str(run_dir.parent), name=run_dir.name)
    return dataclasses.replace(experiment, output=output)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value and path.count(".") < 1:
            out.update(_flat(value, path))
        else:
            out[path] = value
    return out


def changes(experiment) -> dict[str, tuple[Any, Any]]:
    """Keys of ``experiment`` that differ from its run dir's stored ``config.yaml``: ``{key: (old, new)}``.

    Raises ConfigError for a key that may not change on resume, or a budget that shrinks.
    """
    stored_file = experiment.run_dir / results.CONFIG
    if not stored_file.is_file():
        return {}
    stored = _flat(yaml.safe_load(stored_file.read_text(encoding="utf-8")) or {})
    new = _flat(experiment.to_dict())
    diff = {k: (stored[k], new[k]) for k in sorted(set(stored) & set(new))
            if k not in _LOCATION and stored[k] != new[k]}
    refused = [k for k in diff if k not in MAY_CHANGE]
    if refused:
        raise ConfigError(f"--resume: {', '.join(refused)} differ from the run's config.yaml and may not change "
                          f"on resume (only {', '.join(MAY_CHANGE)} may); drop those --set values or start a new "
                          "search (set output.name)")
    for key in _GROW_ONLY:
        if key in diff:
            old, value = diff[key]
            if old is not None and value is not None and value < old:
                raise ConfigError(f"--resume: {key} may only grow ({old} -> {value}); give a value >= {old}")
    return diff


def describe(diff: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {old} -> {new}" for k, (old, new) in diff.items())


def seed_controller(controller, rows: list[dict]) -> int:
    """Teach ``controller`` every recorded trial (``add_evaluated``); returns how many it learned from.

    A recorded genotype outside the controller's (changed) space or constraint is skipped with a note.
    """
    learned = 0
    for row in rows:
        try:
            genotype = Genotype.from_string(row["genotype"])
            controller.add_evaluated(genotype, TrialResult.from_dict(row).told_reward)
        except (KeyError, TypeError, ValueError) as err:
            logger.info("recorded trial %s not learned from: %s", row.get("trial_id"), err)
            continue
        learned += 1
    return learned


def search_time(rows: list[dict]) -> float:
    """Search time spent so far (the ``search_s`` of the last recorded trial; downtime not counted)."""
    return max([float(r.get("search_s") or 0.0) for r in rows], default=0.0)


def time_left(limit_s: float | None, rows: list[dict]) -> float | None:
    """What is left of ``budget.time_limit_s`` (``None``: no limit; 0: spent)."""
    return None if limit_s is None else max(0.0, limit_s - search_time(rows))


def cause_of(err: BaseException | None, kind: type) -> BaseException | None:
    """The first exception of type ``kind`` in ``err``'s chain (Ray wraps a searcher's error)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kind):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
