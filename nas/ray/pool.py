"""The ``workers`` placement: long-lived Ray actors, each holding one built evaluator, scoring batches.

Why not Ray Tune for a cheap evaluator: a Tune trial costs ~0.34 s of scheduling and bookkeeping here,
longer than a supernet takes to score a candidate.  Instead ``evaluator.workers`` actors are started
once; each builds its evaluator (``EvaluatorKind.build``: weights and data loaded once) and scores
*batches* of ``evaluator.batch`` genotype strings per call, so the per-call overhead (~1-2 ms) is
spread over the batch.  Up to two batches per actor are queued (``capacity``), so the actors keep
scoring while the driver records, tells and asks; results are taken in submission order
(``nas.search.batches``), so a run is reproducible whatever the actors' timing.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable

import ray

from ..evaluators.outcome import TrialResult
from ..experiment.search import Experiment

logger = logging.getLogger(__name__)


class _ScorerActor:
    """One worker: an evaluator built once, then batches scored on request."""

    def __init__(self, build: Callable, experiment: Experiment) -> None:
        self.evaluator = build(experiment)

    def score(self, genotypes: list[str]) -> list[TrialResult]:
        return self.evaluator.score(genotypes)

    def ready(self) -> bool:
        return True


class RayScoringPool:
    """``evaluator.workers`` scoring actors; batches assigned round-robin, results taken in submission order."""

    def __init__(self, build: Callable, experiment: Experiment) -> None:
        ev = experiment.evaluator
        actor = ray.remote(num_cpus=ev.cpus_per_worker, num_gpus=ev.gpus_per_worker)(_ScorerActor)
        self.actors = [actor.remote(build, experiment) for _ in range(ev.workers)]
        ray.get([a.ready.remote() for a in self.actors])  # a broken evaluator fails here, once
        self.capacity = 2 * len(self.actors)
        self._refs: deque = deque()
        self._turn = 0

    def submit(self, genotypes: list[str]) -> None:
        actor = self.actors[self._turn % len(self.actors)]
        self._turn += 1
        self._refs.append(actor.score.remote(genotypes))

    def next(self) -> list[TrialResult]:
        return ray.get(self._refs.popleft())

    def close(self) -> None:
        for a in self.actors:
            ray.kill(a)
        self.actors = []


__all__ = ["RayScoringPool"]
