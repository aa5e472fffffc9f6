"""What a resumed search may change, where it runs, and how a controller learns from recorded trials.

A search is resumed in its run dir, wherever that dir now is (moved or copied):
the run dir's ``config.yaml`` is the experiment, its location the output.

On resume only the keys in :data:`MAY_CHANGE` may differ from the stored
``config.yaml`` (a bigger budget, a longer time limit, wider cost bounds, the
resources and Ray to run on); anything else (recipe, space, objective, data,
seed, ...) would mix two searches in one run dir and is refused with one line
listing the changed keys.  Budgets may grow, not shrink.

The session (``nas.search.session``) brings the controller back from its own
resume state; a run dir without one (only ``trials.jsonl`` and ``config.yaml``
left) continues with a fresh controller seeded from ``trials.jsonl``
(:func:`seed_controller`): every recorded genotype is learned from and never
proposed again.  A changed cost bound rebuilds the controller with the new
constraint around the saved state.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from search_spaces import Genotype

from ..config import ConfigError
from ..evaluators.outcome import TrialResult
from ..experiment.run_dir import CONFIG

logger = logging.getLogger(__name__)

#: Keys a resumed search may change, and the ones that rebuild the controller (its constraint).
MAY_CHANGE = ("budget.samples", "budget.time_limit_s", "controller.cost_min", "controller.cost_max",
              "controller.max_tries", "resources.cpus_per_trial", "resources.gpus_per_trial",
              "resources.num_cpus", "resources.num_gpus", "resources.max_concurrent", "proxy.threads",
              "evaluator.workers", "evaluator.cpus_per_worker", "evaluator.gpus_per_worker", "ray.address",
              "ray.dashboard", "ray.connect_timeout_s")
#: Where the run is: taken from the run dir's location, never compared.
_LOCATION = ("output.dir", "output.name")
_GROW_ONLY = ("budget.samples", "budget.time_limit_s")


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
    stored_file = experiment.run_dir / CONFIG
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
