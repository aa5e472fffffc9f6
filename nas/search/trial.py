"""One search trial: genotype -> proxy accuracy + target cost -> reward, as a :class:`TrialResult`.

The data path of the house plan: accuracy comes from the proxy network
(``nas.proxy``), cost from the TARGET model (``nas.cost.target``: 224x224, 1000
classes by default, never the down-scaled proxy), and the reward is MnasNet's
``ACC * (cost / T) ** w`` (``nas.search.objective``).  ``run_trial`` is the one
place both are computed: once per trial, the cost before training, the reward
after every epoch (handed to ``on_epoch``) and at the end.  It never raises for
a bad candidate: a build error, a NaN/inf loss or out-of-memory gives
``status="failed"`` with the reason, accuracy 0 and reward 0.  Configuration
mistakes (missing dataset, unknown device) raise ValueError.  Data and cost
models are cached per process, so a long-lived worker can call it repeatedly.

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
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

from search_spaces import Genotype, resolve_genotype

from ..config import ConfigError, apply_overrides, from_dict, load_yaml
from ..cost.base import CostModel, build_cost_model
from ..cost.target import TargetModel
from ..proxy.config import ProxyConfig
from ..proxy.data import DataConfig, load_data
from ..proxy.train import train_proxy
from .objective import ObjectiveConfig, reward

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "stopped"]
#: The ``status`` of a per-epoch report: the trial has not finished yet.
RUNNING = "running"
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
        return _json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any], **changes: Any) -> "TrialResult":
        """The result of ``data`` (a ``to_dict`` or a report; other keys ignored, None as the default)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        values.update(changes)
        return cls(**values)


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


@dataclass(frozen=True)
class TrialConfig:
    """The sections of an experiment YAML that one trial uses (other top-level sections are ignored)."""

    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    target: TargetModel = field(default_factory=TargetModel)


def load_trial_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read ``path`` (or the defaults), apply ``--set`` overrides, keep the trial sections, type-check."""
    known = tuple(TrialConfig.__dataclass_fields__)
    for item in overrides:
        section = item.split("=", 1)[0].strip().split(".", 1)[0]
        if section not in known:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; a trial uses "
                              f"{', '.join(known)} (e.g. --set proxy.epochs=3)")
    raw = load_yaml(path) if path else {}
    apply_overrides(raw, overrides)
    sections = {f: raw.pop(f) for f in known if f in raw}
    if raw:
        log.debug("ignoring sections not used by one trial: %s", ", ".join(map(str, raw)))
    return from_dict(TrialConfig, sections)


@lru_cache(maxsize=16)
def _cost_model(objective: ObjectiveConfig, target: TargetModel) -> CostModel:
    return build_cost_model(objective.cost, target, objective.latency_table)


def run_trial(genotype: Genotype | str, proxy: ProxyConfig, data: DataConfig, objective: ObjectiveConfig,
              target: TargetModel = TargetModel(), on_epoch: Callable[[dict], bool | None] | None = None
              ) -> TrialResult:
    """Train ``genotype`` on the proxy task and score it (see the module docstring).

    ``on_epoch(metrics)`` is called after every epoch with ``epoch``, ``accuracy``,
    ``loss``, ``images_per_s`` (+ ``lr``, ``train_s``, ``eval_s``) and the trial's
    ``reward``, ``cost``, ``params`` and ``macs`` at that epoch; returning True
    stops training early (the result stays ``ok`` with the epochs run).
    """
    start = time.perf_counter()
    if isinstance(genotype, str):
        genotype = resolve_genotype(genotype)
    if not isinstance(genotype, Genotype):
        raise TypeError(f"run_trial needs a Genotype or a genotype string, got {type(genotype).__name__}")
    text = genotype.to_string()
    cost_model = _cost_model(objective, target)
    dataset = load_data(data)

    def failed(reason: str, **extra: Any) -> TrialResult:
        log.info("trial failed: %s (%s)", reason, text)
        return TrialResult(text, "failed", reason, **extra, wall_s=time.perf_counter() - start)

    try:
        params, macs = target.counts(genotype)
        cost = float(cost_model.cost(genotype))
    except Exception as err:  # a candidate the target cannot be built or costed for
        return failed(f"cost failed: {type(err).__name__}: {err}")
    counts = dict(params=params, macs=macs, cost=cost)

    def report(metrics: dict) -> bool | None:
        return on_epoch({**metrics, "reward": _epoch_reward(metrics["accuracy"], cost, objective), **counts})

    outcome = train_proxy(genotype, proxy, dataset, report if on_epoch is not None else None)
    common = dict(counts, epochs=outcome.epochs, proxy_params=outcome.proxy_params,
                  proxy_macs=outcome.proxy_macs, history=outcome.history, images_per_s=outcome.images_per_s)
    if outcome.status != "ok":
        return failed(outcome.reason, **common)
    try:
        score = reward(outcome.accuracy, cost, objective)
    except ValueError as err:  # e.g. a zero or infinite cost from a latency table
        return failed(f"reward failed: {err}", **common)
    result = TrialResult(text, "ok", "", accuracy=outcome.accuracy, reward=score,
                         wall_s=time.perf_counter() - start, **common)
    log.info("trial ok: accuracy %.4f, reward %.4f, %d epochs, %.1fs", result.accuracy, result.reward,
             result.epochs, result.wall_s)
    return result


def _epoch_reward(accuracy: float, cost: float, objective: ObjectiveConfig) -> float:
    """The reward at an epoch's accuracy (nan where the reward is undefined, e.g. a zero cost)."""
    accuracy = min(max(float(accuracy), 0.0), 1.0) if math.isfinite(accuracy) else 0.0
    try:
        return reward(accuracy, cost, objective)
    except ValueError:
        return math.nan
