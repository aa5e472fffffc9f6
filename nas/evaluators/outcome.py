"""The one typed outcome of a candidate (:class:`TrialResult`) and the one place cost and reward are computed.

Every evaluator (proxy training, supernet scoring, a benchmark table) turns a genotype into a
:class:`TrialResult`: accuracy from the evaluator, cost from the TARGET model (``nas.cost.target``:
224x224, 1000 classes by default, never the down-scaled proxy), and MnasNet's reward
``ACC * (cost / T) ** w`` (``nas.cost.objective``).  :class:`Scoring` is that step, written once:
``counts`` (params, MACs, cost of a genotype; cached), ``result`` (the reward of an accuracy, or a
failed result when the reward is undefined) and ``failed``.  A bad candidate is a ``failed`` result
with its reason, accuracy 0 and reward 0, never an exception.

``settle`` is the one rule for how a trial ended (``ok``, ``failed`` or
``stopped``), from what it last reported: the driver records its result and
tells the controller by it.  A trial a scheduler (ASHA) stopped early is
``stopped``: recorded with the accuracy and reward of its last epoch, and told
to the controller as ``None`` -- as Ray's ``OptunaSearch`` tells Optuna a
pruned trial (``TrialState.PRUNED``, no final value), never as if it were a
full-length result.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal

from search_spaces import Genotype

from ..cost.base import CostModel, build_cost_model
from ..cost.objective import ObjectiveConfig, reward
from ..cost.target import TargetModel

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "stopped"]
#: The ``status`` of a per-epoch report: the trial has not finished yet.
RUNNING = "running"
#: Genotype strings whose counts :class:`Scoring` keeps (a search revisits genotypes; cleared when full).
COUNTS_CACHE = 65536
STOPPED_REASON = "stopped early by the scheduler"


@dataclass
class TrialResult:
    """The outcome of one trial; ``params``/``macs``/``cost`` are of the TARGET model."""

    genotype: str
    status: Status
    reason: str = ""
    accuracy: float = 0.0
    params: int = 0
    macs: int = 0
    cost: float = 0.0
    reward: float = 0.0
    epochs: int = 0
    wall_s: float = 0.0
    images_per_s: float = 0.0
    proxy_params: int = 0
    proxy_macs: int = 0
    history: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def told_reward(self) -> float | None:
        """What the controller is told: the reward of a trial that ran to its end, else ``None``."""
        return self.reward if self.ok and _finite(self.reward) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain types, non-finite floats as None."""
        return _json_safe({name: getattr(self, name) for name in _FIELDS})

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> "TrialResult":
        """The result of ``data`` (a ``to_dict`` or a report; other keys ignored, None as the default)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values.update(changes)
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(TrialResult))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def settle(genotype: str, report: dict[str, Any] | None, error: str | None = None) -> TrialResult:
    """How a trial ended, from its last report (``None``: it reported nothing) -- the one rule.

    * ``error`` (the trial raised): ``failed`` with that reason;
    * a final report (``status`` ok or failed, as ``run_trial`` decided): that result;
    * a per-epoch report (``status: running``): the trial was stopped before its end
      (by ASHA): ``stopped`` with the accuracy and reward of the last epoch it ran.
    """
    report = dict(report or {})
    report.pop("genotype", None)
    if error is not None or not report:
        reason = error if error is not None else "the trial ended without reporting a result"
        return TrialResult.from_dict(report, genotype=genotype, status="failed", reason=reason, accuracy=0.0,
                                     reward=0.0, epochs=int(report.get("epoch", report.get("epochs", 0))))
    if report.get("status") in ("ok", "failed"):
        return TrialResult.from_dict(report, genotype=genotype)
    return TrialResult.from_dict(report, genotype=genotype, status="stopped", reason=STOPPED_REASON,
                                 epochs=int(report.get("epoch", 0)))


def reward_to_tell(report: dict[str, Any] | None, error: bool = False) -> float | None:
    """The controller's reward for a trial that ended with ``report`` (the searcher's ``reward_of``)."""
    return settle("", report, "error" if error else None).told_reward


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalars
        return _json_safe(value.item())
    return str(value)


@lru_cache(maxsize=16)
def cost_model(objective: ObjectiveConfig, target: TargetModel) -> CostModel:
    """The objective's cost model on ``target``, built once per process."""
    return build_cost_model(objective.cost, target, objective.latency_table)


class Scoring:
    """Cost and reward of candidates for one objective and target model -- the one place they are computed.

    ``counts`` caches the analytical counts and cost per genotype string (a search revisits genotypes:
    evolution's children, a resumed batch).
    """

    def __init__(self, objective: ObjectiveConfig, target: TargetModel) -> None:
        self.objective = objective
        self.target = target
        self.cost_model = cost_model(objective, target)
        self._cache: dict[str, tuple[int, int, float]] = {}

    def counts(self, text: str, genotype: Genotype | None = None) -> dict[str, Any]:
        """``params``, ``macs`` (target model) and ``cost`` of a genotype string; raises for a bad candidate.

        ``genotype``: the parsed ``text`` where the caller has it (saves parsing it again on a miss).
        """
        hit = self._cache.get(text)
        if hit is None:
            genotype = genotype if genotype is not None else Genotype.from_string(text)
            params, macs = self.target.counts(genotype)
            hit = (params, macs, float(self.cost_model.cost(genotype)))
            if len(self._cache) >= COUNTS_CACHE:
                self._cache.clear()
            self._cache[text] = hit
        return {"params": hit[0], "macs": hit[1], "cost": hit[2]}

    @staticmethod
    def failed(text: str, reason: str, start: float, **extra: Any) -> TrialResult:
        log.debug("candidate failed: %s (%s)", reason, text)
        return TrialResult(text, "failed", reason, wall_s=time.perf_counter() - start, **extra)

    def result(self, text: str, accuracy: float, start: float, counts: dict[str, Any], **extra: Any) -> TrialResult:
        """The ``ok`` result of ``accuracy`` (its reward), or ``failed`` where the reward is undefined."""
        try:
            value = reward(accuracy, counts["cost"], self.objective)
        except ValueError as err:  # e.g. a zero or infinite cost from a latency table
            return self.failed(text, f"reward failed: {err}", start, **counts, **extra)
        return TrialResult(text, "ok", "", accuracy=accuracy, reward=value, wall_s=time.perf_counter() - start,
                           **counts, **extra)

    def epoch_reward(self, accuracy: float, cost: float) -> float:
        """The reward at an epoch's accuracy (nan where the reward is undefined, e.g. a zero cost)."""
        accuracy = min(max(float(accuracy), 0.0), 1.0) if math.isfinite(accuracy) else 0.0
        try:
            return reward(accuracy, cost, self.objective)
        except ValueError:
            return math.nan


__all__ = ["RUNNING", "STOPPED_REASON", "Scoring", "Status", "TrialResult", "cost_model", "reward_to_tell", "settle"]
