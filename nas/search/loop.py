"""The driver-side ask/tell loop for evaluators that score in milliseconds (no Ray here).

A Ray Tune trial costs ~0.34 s of overhead here; a supernet scores a candidate in
~0.1-0.3 s.  So for ``evaluator.kind: supernet`` the controller does not sit behind a
Tune searcher: the driver asks it for a batch of genotypes, a pool of long-lived
workers scores batches (``ScoringPool``; ``nas.actor_pool`` is the Ray one), and the
results are recorded through the same :class:`~nas.search.recorder.TrialRecorder`
(trials.jsonl, TensorBoard) and told to the controller by the same rule
(``TrialResult.told_reward``).  Up to ``pool.capacity`` batches are in flight, so
the workers keep scoring while the driver records, tells and asks.

Results are taken in submission order, so a run is reproducible: every ask sees the
same told history whatever the workers' timing.

Resume after SIGKILL loses nothing and repeats nothing.  ``search_state.json``
(plain JSON, written atomically) holds the controller's ``state_dict()``, the next
trial index and the batches in flight (trial id + genotype, asked but not yet told).
It is written after each batch is recorded and told and the next one asked, before
that one is submitted.  On resume the controller comes back from it; of the in-flight
batches, trials already in trials.jsonl (recorded just before the kill) are told from
their rows, the rest are scored again; then the loop continues up to the same budget.
Trial ids are ``c<index>`` in ask order, so a row is never recorded twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from search_spaces import Genotype

from ..files import atomic_write
from .recorder import TrialRecorder
from .trial import TrialResult

log = logging.getLogger(__name__)

STATE = "search_state.json"
STATE_FORMAT = 1


class ScoringPool(Protocol):
    """Workers that score batches of genotype strings; results come back in submission order."""

    capacity: int  # batches that may be in flight at once

    def submit(self, genotypes: list[str]) -> None: ...

    def next(self) -> list[TrialResult]: ...


@dataclass
class LoopStats:
    """What the loop did: candidates scored now, told from rows recorded before a kill, and where time went."""

    scored: int = 0
    told_from_rows: int = 0
    wall_s: float = 0.0
    wait_s: float = 0.0      # blocked waiting for the workers
    driver_s: float = 0.0    # asking, telling, recording, checkpointing, submitting
    scoring_s: float = 0.0   # sum of the candidates' own scoring time (in the workers)

    @property
    def overhead_per_candidate_s(self) -> float:
        return self.driver_s / max(1, self.scored)

    @property
    def scoring_per_candidate_s(self) -> float:
        return self.scoring_s / max(1, self.scored)


def trial_id(index: int) -> str:
    return f"c{index:05d}"


def _read_state(run_dir: Path) -> dict | None:
    path = Path(run_dir) / STATE
    if not path.is_file():
        return None
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: search state format {state.get('format')!r} is not supported (this version "
                         f"reads {STATE_FORMAT}); start a new run")
    return state


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / STATE).is_file()


def run_ask_tell(controller, total: int, batch: int, pool: ScoringPool, recorder: TrialRecorder, run_dir: Path,
                 resume: bool = False, time_limit_s: float | None = None,
                 progress: Callable[[str], None] | None = None) -> LoopStats:
    """Ask ``total`` genotypes of ``controller`` in batches of ``batch``, score them in ``pool``, record, tell."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    stats = LoopStats()
    start = time.perf_counter()
    inflight: deque[list[tuple[str, str]]] = deque()  # submitted batches of (trial id, genotype)
    next_index = 0
    if resume:
        state = _read_state(run_dir)
        if state is None:
            raise FileNotFoundError(f"--resume: no {STATE} in {run_dir}; run without --resume to start it")
        controller.load_state_dict(state["controller"])
        next_index = int(state["next_index"])
        recorded = {row["trial_id"]: row for row in recorder.rows}
        for items in state["inflight"]:  # batch by batch, so the tells come in the uninterrupted order
            todo = []
            for tid, text in items:
                if tid in recorded:
                    controller.tell(Genotype.from_string(text), TrialResult.from_dict(recorded[tid]).told_reward)
                    stats.told_from_rows += 1
                else:
                    todo.append((tid, text))
            if todo:
                inflight.append([tuple(item) for item in todo])
        log.info("resumed at trial %d: %d told from recorded rows, %d to score again", next_index,
                 stats.told_from_rows, sum(map(len, inflight)))

    def save() -> None:
        state = {"format": STATE_FORMAT, "controller": controller.state_dict(), "next_index": next_index,
                 "inflight": [list(map(list, b)) for b in inflight]}
        atomic_write(run_dir / STATE, json.dumps(state))

    def ask_batch() -> list[tuple[str, str]]:
        nonlocal next_index
        items = []
        for _ in range(min(batch, total - next_index)):
            items.append((trial_id(next_index), controller.ask().to_string()))
            next_index += 1
        return items

    def out_of_time() -> bool:
        return time_limit_s is not None and time.perf_counter() - start > time_limit_s

    # Fill the pool: resubmitted batches first, then new asks.
    fresh: list[list[tuple[str, str]]] = []
    while len(inflight) + len(fresh) < pool.capacity and next_index < total and not out_of_time():
        fresh.append(ask_batch())
    inflight.extend(fresh)
    save()
    for items in inflight:
        pool.submit([g for _, g in items])
    t_driver = time.perf_counter()
    while inflight:
        items = inflight[0]
        stats.driver_s += time.perf_counter() - t_driver
        t_wait = time.perf_counter()
        results = pool.next()
        t_driver = time.perf_counter()
        stats.wait_s += t_driver - t_wait
        inflight.popleft()
        for (tid, text), result in zip(items, results, strict=True):
            recorder.record(tid, result, None, None)
            controller.tell(Genotype.from_string(text), result.told_reward)
            stats.scored += 1
            stats.scoring_s += result.wall_s
        new = ask_batch() if next_index < total and not out_of_time() else None
        if new:
            inflight.append(new)
        save()
        if new:
            pool.submit([g for _, g in new])
        if progress is not None:
            best, done = controller.best, f"[{len(recorder.rows)}/{total}]"
            progress(f"{done} best reward {best[1]:.4f} | {time.perf_counter() - start:.0f}s" if best
                     else f"{done} no candidate finished yet")
    stats.driver_s += time.perf_counter() - t_driver
    stats.wall_s = time.perf_counter() - start
    recorder.close()
    return stats


__all__ = ["LoopStats", "STATE", "ScoringPool", "has_state", "run_ask_tell", "trial_id"]
