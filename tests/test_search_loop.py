"""The driver's ask/tell loop (nas.search.loop): exact budget, ordered results, resume after a crash without loss
or duplicates.  The pool is an in-process one over a deterministic scorer (isolates the loop from Ray and torch)."""

from __future__ import annotations

import json
from collections import deque

import pytest

from controllers import make_controller
from nas.search import results
from nas.search.loop import STATE, run_ask_tell
from nas.search.recorder import TrialRecorder
from nas.search.trial import TrialResult
from search_spaces import Genotype, get_space


def _score(text: str) -> TrialResult:
    """A deterministic reward of the genotype (more filters, larger kernels: higher), one failure rule."""
    g = Genotype.from_string(text)
    value = sum(b.kernel * b.filters for b in g.blocks) / 1000.0
    if value > 0 and int(value * 1000) % 7 == 0:
        return TrialResult(text, "failed", "a failing candidate")
    return TrialResult(text, "ok", accuracy=min(value, 1.0), reward=value, macs=1, params=1, wall_s=0.01)


class Crash(Exception):
    pass


class InlinePool:
    def __init__(self, capacity: int = 3, crash_after: int | None = None) -> None:
        self.capacity = capacity
        self.queue: deque = deque()
        self.calls = 0
        self.crash_after = crash_after

    def submit(self, genotypes):
        self.queue.append(list(genotypes))

    def next(self):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise Crash()
        return [_score(g) for g in self.queue.popleft()]


class CrashingRecorder(TrialRecorder):
    """Dies (like SIGKILL) after writing ``limit`` rows: between recording a batch and saving the state."""

    def __init__(self, run_dir, total, limit):
        super().__init__(run_dir, total)
        self.limit = limit

    def record(self, *args, **kwargs):
        if len(self.rows) >= self.limit:
            raise Crash()
        return super().record(*args, **kwargs)


def _controller():
    return make_controller("evolution", get_space("tiny"), seed=3, settings={"population": 6, "sample": 3})


def _run(run_dir, pool, recorder=None, resume=False, total=37, batch=4):
    recorder = recorder or TrialRecorder(run_dir, total)
    return run_ask_tell(_controller(), total, batch, pool, recorder, run_dir, resume=resume)


def test_budget_is_exact_and_rows_are_ordered(tmp_path):
    stats = _run(tmp_path, InlinePool())
    rows = results.read_trials(tmp_path)
    assert len(rows) == 37 == stats.scored
    assert [r["trial_id"] for r in rows] == [f"c{i:05d}" for i in range(37)]
    assert any(r["status"] == "failed" for r in rows) and any(r["status"] == "ok" for r in rows)
    assert stats.driver_s > 0 and stats.scoring_s == pytest.approx(0.01 * sum(r["status"] == "ok" for r in rows))
    state = json.loads((tmp_path / STATE).read_text())
    assert state["next_index"] == 37 and state["inflight"] == []


@pytest.mark.parametrize("crash", ["while scoring", "after recording"])
def test_resume_after_a_crash_loses_and_repeats_nothing(tmp_path, crash):
    clean = tmp_path / "clean"
    _run(clean, InlinePool())
    expected = [(r["trial_id"], r["genotype"]) for r in results.read_trials(clean)]

    run = tmp_path / "crashed"
    with pytest.raises(Crash):
        if crash == "while scoring":
            _run(run, InlinePool(crash_after=4))
        else:
            _run(run, InlinePool(), recorder=CrashingRecorder(run, 37, limit=10))
    before = results.read_trials(run)
    assert 0 < len(before) < 37
    stats = _run(run, InlinePool(), resume=True)
    lines = (run / results.TRIALS).read_text().splitlines()
    rows = results.read_trials(run)
    assert len(lines) == len(rows) == 37                       # every candidate once, none twice
    assert [(r["trial_id"], r["genotype"]) for r in rows] == expected  # the same search as without the crash
    assert stats.scored + len(before) == 37
    if crash == "after recording":
        assert stats.told_from_rows > 0  # recorded before the crash, told to the restored controller from its row


def test_resume_without_state_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no search_state.json"):
        _run(tmp_path, InlinePool(), resume=True)


def test_a_grown_budget_continues_a_finished_loop(tmp_path):
    _run(tmp_path, InlinePool(), total=20)
    first = results.read_trials(tmp_path)
    stats = _run(tmp_path, InlinePool(), resume=True, total=30)
    rows = results.read_trials(tmp_path)
    assert len(rows) == 30 and stats.scored == 10 and rows[:20] == first
    assert [r["trial_id"] for r in rows] == [f"c{i:05d}" for i in range(30)]
