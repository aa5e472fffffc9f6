"""A supernet as a search evaluator: one worker's scorer, each candidate a :class:`TrialResult`.

Held by a long-lived worker (``nas.actor_pool``): the supernet and the data are loaded
once, then batches of genotype strings are scored -- BN recalibration and held-out
accuracy of the path (``SupernetEvaluator``), cost of the TARGET model and MnasNet's
reward computed exactly as a proxy trial's (``nas.search.trial.run_trial``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache

from nas.cost.base import build_cost_model
from nas.cost.target import TargetModel
from nas.search.objective import ObjectiveConfig, reward
from nas.search.trial import TrialResult
from search_spaces import Genotype


@dataclass
class SupernetTrialScorer:
    """One worker's scorer: the supernet and data loaded once, each candidate a :class:`TrialResult`.

    Never raises for a bad candidate (not a path of the supernet, cost failure, out of memory):
    the result is ``failed`` with the reason, as a proxy trial's is.
    """

    checkpoint: str
    objective: ObjectiveConfig
    target: TargetModel
    calib_batches: int | None = None
    device: str = "auto"
    threads: int = 1
    _evaluator: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        import torch

        from .evaluate import SupernetEvaluator

        torch.set_num_threads(max(1, int(self.threads)))
        self._evaluator = SupernetEvaluator.from_checkpoint(self.checkpoint, calib_batches=self.calib_batches,
                                                            device=self.device)
        self._cost_model = build_cost_model(self.objective.cost, self.target, self.objective.latency_table)
        self._counts = lru_cache(maxsize=65536)(self._count)

    def _count(self, text: str) -> tuple[int, int, float]:
        genotype = Genotype.from_string(text)
        params, macs = self.target.counts(genotype)
        return params, macs, float(self._cost_model.cost(genotype))

    def score_one(self, text: str) -> TrialResult:
        start = time.perf_counter()

        def failed(reason: str, **extra) -> TrialResult:
            return TrialResult(text, "failed", reason, wall_s=time.perf_counter() - start, **extra)

        try:
            genotype = Genotype.from_string(text)
            params, macs, cost = self._counts(text)
        except Exception as err:  # a candidate the target cannot be built or costed for
            return failed(f"cost failed: {type(err).__name__}: {err}")
        counts = dict(params=params, macs=macs, cost=cost)
        score = self._evaluator.score(genotype)
        if not score.ok:
            return failed(score.reason, **counts)
        try:
            value = reward(score.accuracy, cost, self.objective)
        except ValueError as err:
            return failed(f"reward failed: {err}", **counts)
        info = score.info
        return TrialResult(text, "ok", "", accuracy=score.accuracy, reward=value, epochs=0,
                           wall_s=time.perf_counter() - start, proxy_params=int(info.get("proxy_params", 0)),
                           proxy_macs=int(info.get("proxy_macs", 0)), **counts)

    def score(self, genotypes: list[str]) -> list[TrialResult]:
        return [self.score_one(g) for g in genotypes]



@lru_cache(maxsize=2)
def cached_scorer(checkpoint: str, objective: ObjectiveConfig, target: TargetModel, threads: int = 1
                  ) -> SupernetTrialScorer:
    """One scorer per process and checkpoint (for callers that score one candidate per call, e.g. a Tune trial)."""
    return SupernetTrialScorer(checkpoint, objective, target, threads=threads)


__all__ = ["SupernetTrialScorer", "cached_scorer"]
