"""One search trial: genotype -> proxy accuracy + target cost -> reward, as a :class:`TrialResult`.

The data path of the house plan: accuracy comes from the proxy network
(``nas.proxy``), cost from the TARGET model (``nas.cost``: 224x224, 1000
classes by default, never the down-scaled proxy), and the reward is MnasNet's
``ACC * (cost / T) ** w`` (``nas.objective``).  ``run_trial`` never raises for
a bad candidate: a build error, a NaN/inf loss or out-of-memory gives
``status="failed"`` with the reason, accuracy 0 and reward 0.  Configuration
mistakes (missing dataset, unknown device) raise ValueError.  Data and cost
models are cached per process, so a long-lived worker can call it repeatedly.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Callable

from search_spaces import Genotype, resolve_genotype

from .cost import CostModel, TargetModel, build_cost_model
from .data import DataConfig, load_data
from .objective import ObjectiveConfig, reward
from .proxy import ProxyConfig, train_proxy

log = logging.getLogger(__name__)


@dataclass
class TrialResult:
    """The outcome of one trial; ``params``/``macs``/``cost`` are of the TARGET model."""

    genotype: str
    status: str  # "ok" | "failed"
    reason: str
    accuracy: float
    params: int
    macs: int
    cost: float
    reward: float
    epochs: int
    wall_s: float
    images_per_s: float
    proxy_params: int
    proxy_macs: int
    history: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain types, non-finite floats as None."""
        return _json_safe(asdict(self))


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
def _cost_model(objective: ObjectiveConfig, target: TargetModel) -> CostModel:
    return build_cost_model(objective, target)


def run_trial(genotype: Genotype | str, proxy: ProxyConfig, data: DataConfig, objective: ObjectiveConfig,
              target: TargetModel = TargetModel(), on_epoch: Callable[[dict], bool | None] | None = None
              ) -> TrialResult:
    """Train ``genotype`` on the proxy task and score it (see the module docstring).

    ``on_epoch(metrics)`` is called after every epoch with ``epoch``, ``accuracy``,
    ``loss``, ``images_per_s`` (+ ``lr``, ``train_s``, ``eval_s``); returning True
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
        values = dict(genotype=text, status="failed", reason=reason, accuracy=0.0, params=0, macs=0,
                      cost=0.0, reward=0.0, epochs=0, wall_s=0.0, images_per_s=0.0, proxy_params=0,
                      proxy_macs=0, history=[])
        values.update(extra)
        values["wall_s"] = time.perf_counter() - start
        return TrialResult(**values)

    try:
        params, macs = target.counts(genotype)
        cost = float(cost_model.cost(genotype))
    except Exception as err:  # a candidate the target cannot be built or costed for
        return failed(f"cost failed: {type(err).__name__}: {err}")
    counts = dict(params=params, macs=macs, cost=cost)
    outcome = train_proxy(genotype, proxy, dataset, on_epoch)
    common = dict(counts, epochs=outcome.epochs, proxy_params=outcome.proxy_params,
                  proxy_macs=outcome.proxy_macs, history=outcome.history, images_per_s=outcome.images_per_s)
    if outcome.status != "ok":
        return failed(outcome.reason, **common)
    try:
        score = reward(outcome.accuracy, cost, objective)
    except ValueError as err:  # e.g. a zero or infinite cost from a latency table
        return failed(f"reward failed: {err}", **common)
    result = TrialResult(genotype=text, status="ok", reason="", accuracy=outcome.accuracy, reward=score,
                         wall_s=time.perf_counter() - start, **common)
    log.info("trial ok: accuracy %.4f, reward %.4f, %d epochs, %.1fs", result.accuracy, result.reward,
             result.epochs, result.wall_s)
    return result
