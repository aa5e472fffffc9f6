"""The batch pump: a session's candidates scored in batches, in the driver or in long-lived workers.

For evaluators that score in microseconds to milliseconds (a benchmark table, a supernet path), the
controller does not sit behind a Ray Tune searcher: the session asks for a batch of ``batch``
candidates, a pool scores it, and the results are recorded in submission order -- so a run is
reproducible, every ask seeing the same told history whatever the workers' timing.  Up to
``pool.capacity`` batches are in flight, so workers keep scoring while the driver records, tells and
asks.  Two pools: :class:`InProcessPool` (placement ``driver``: the evaluator lives in this process,
no Ray at all) and ``nas.ray.pool.RayScoringPool`` (placement ``workers``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from ..evaluators.base import Evaluator
from ..evaluators.outcome import TrialResult
from .session import Candidate, Session


class ScoringPool(Protocol):
    """Workers that score batches of genotype strings; results come back in submission order."""

    capacity: int  # batches that may be in flight at once

    def submit(self, genotypes: list[str]) -> None: ...

    def next(self) -> list[TrialResult]: ...


class InProcessPool:
    """The driver scores: a batch is scored when its results are taken (one batch in flight)."""

    capacity = 1

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self._queue: deque[list[str]] = deque()

    def submit(self, genotypes: list[str]) -> None:
        self._queue.append(genotypes)

    def next(self) -> list[TrialResult]:
        return self.evaluator.score(self._queue.popleft())


@dataclass
class PumpStats:
    """Where the pump's time went: scored now, blocked on the workers, the driver's own work."""

    scored: int = 0
    wall_s: float = 0.0
    wait_s: float = 0.0      # blocked waiting for the workers (in-process: the scoring itself)
    driver_s: float = 0.0    # asking, telling, recording, checkpointing, submitting
    scoring_s: float = 0.0   # sum of the candidates' own scoring time

    @property
    def overhead_per_candidate_s(self) -> float:
        return self.driver_s / max(1, self.scored)

    @property
    def scoring_per_candidate_s(self) -> float:
        return self.scoring_s / max(1, self.scored)


def pump_batches(session: Session, pool: ScoringPool, batch: int, stats: PumpStats | None = None) -> PumpStats:
    """Ask, score and record batches until the session's budget is spent or it stops."""
    stats = stats or PumpStats()
    start = t_driver = time.perf_counter()
    inflight: deque[list[Candidate]] = deque()

    def fill() -> None:
        while len(inflight) < pool.capacity:
            items = session.ask(batch)
            if not items:
                return
            inflight.append(items)
            pool.submit([c.genotype for c in items])

    fill()
    while inflight:
        stats.driver_s += time.perf_counter() - t_driver
        t_wait = time.perf_counter()
        results = pool.next()
        t_driver = time.perf_counter()
        stats.wait_s += t_driver - t_wait
        items = inflight.popleft()
        session.record_many([(c, r, None) for c, r in zip(items, results, strict=True)])
        stats.scored += len(items)
        stats.scoring_s += sum(r.wall_s for r in results)
        fill()
    stats.driver_s += time.perf_counter() - t_driver
    stats.wall_s += time.perf_counter() - start
    return stats


__all__ = ["InProcessPool", "PumpStats", "ScoringPool", "pump_batches"]
