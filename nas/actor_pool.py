"""The supernet search on Ray: long-lived scoring actors driven by the driver's ask/tell loop.

The second driver module of nas/ (with ``nas.driver``) allowed to import Ray.  Why not
Ray Tune: a Tune trial costs ~0.34 s of scheduling and bookkeeping here, longer than
a supernet takes to score a candidate.  Instead ``evaluator.workers`` Ray actors are
started once; each builds one :class:`nas.supernet.trials.SupernetTrialScorer` (the
supernet's weights and the data loaded once, calibration batches resident) and scores
*batches* of ``evaluator.batch`` genotype strings per call, so the per-call overhead
(~1-2 ms) is spread over the batch.  The controller runs in the driver
(``nas.search.loop.run_ask_tell``): up to two batches per actor are queued, so the
actors keep scoring while the driver records, tells and asks.  Results come back in
submission order (reproducible runs).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from pathlib import Path
from typing import Callable

import ray

from .experiment import Experiment, build_controller
from .search.loop import LoopStats, run_ask_tell
from .search.recorder import TrialRecorder
from .search.trial import TrialResult
from .supernet.trials import SupernetTrialScorer

logger = logging.getLogger(__name__)


class _ScorerActor:
    """One worker: a SupernetTrialScorer built once, then batches scored on request."""

    def __init__(self, kwargs: dict) -> None:
        self.scorer = SupernetTrialScorer(**kwargs)

    def score(self, genotypes: list[str]) -> list[TrialResult]:
        return self.scorer.score(genotypes)

    def ready(self) -> bool:
        return True


class RayScoringPool:
    """``evaluator.workers`` scoring actors; batches assigned round-robin, results taken in submission order."""

    def __init__(self, experiment: Experiment) -> None:
        ev = experiment.evaluator
        kwargs = dict(checkpoint=ev.checkpoint, objective=experiment.objective, target=experiment.target,
                      calib_batches=ev.calib_batches, device=ev.device, threads=max(1, int(ev.cpus_per_worker)))
        actor = ray.remote(num_cpus=ev.cpus_per_worker, num_gpus=ev.gpus_per_worker)(_ScorerActor)
        self.actors = [actor.remote(kwargs) for _ in range(ev.workers)]
        ray.get([a.ready.remote() for a in self.actors])  # a broken checkpoint fails here, once
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


def run_pool_search(experiment: Experiment, resume: bool, progress: Callable[[str], None] | None = None,
                    controller_name: str | None = None) -> LoopStats:
    """Run (or resume) the ask/tell search of ``experiment`` with its supernet evaluator, in a running Ray.

    ``controller_name`` overrides the experiment's controller (the random baseline: same seed, same budget).
    """
    if controller_name is not None:
        experiment = dataclasses.replace(
            experiment, controller=dataclasses.replace(experiment.controller, name=controller_name, settings={}))
    run_dir: Path = experiment.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = RayScoringPool(experiment)
    try:
        recorder = TrialRecorder(run_dir, experiment.budget.samples, None)
        return run_ask_tell(build_controller(experiment), experiment.budget.samples, experiment.evaluator.batch,
                            pool, recorder, run_dir, resume=resume, time_limit_s=experiment.budget.time_limit_s,
                            progress=progress)
    finally:
        pool.close()


__all__ = ["RayScoringPool", "run_pool_search"]
