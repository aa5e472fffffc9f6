"""The Searcher adapter as a unit: ask/tell mapping, failures, save/restore, the budget after a crash."""

from __future__ import annotations

import math

import pytest

from controllers import make_controller
from search_spaces import get_space

pytestmark = pytest.mark.ray  # imports Ray (no cluster is started)


def _searcher(**kw):
    from controllers.ray_searcher import ControllerSearcher  # imports Ray: not at collection

    kw = {"metric": "reward", "mode": "max", **kw}
    return ControllerSearcher(make_controller("random", get_space("tiny"), seed=0), **kw)


def test_suggest_and_complete_tell_the_controller():
    s = _searcher()
    a, b = s.suggest("a"), s.suggest("b")
    assert set(a) == {"genotype"} and s.controller.num_pending == 2
    s.on_trial_complete("b", {"reward": 0.5})
    s.on_trial_complete("a", {"reward": math.nan})      # failed: told as None, never a crash
    s.on_trial_complete("zzz", {"reward": 1.0})          # unknown trial: ignored
    assert s.controller.num_pending == 0 and s.done == {"a", "b"}
    assert s.controller.best[1] == 0.5


def test_failed_status_or_error_is_none(tmp_path):
    s = _searcher()
    s.suggest("a"), s.suggest("b")
    s.on_trial_complete("a", {"reward": 0.9, "status": "failed"})
    s.on_trial_complete("b", None, error=True)
    assert s.controller.best is None


def test_restore_counts_trials_recorded_after_the_checkpoint(tmp_path):
    recorded = {"a", "b", "late"}  # 'late' finished after the checkpoint below, before a crash
    s = _searcher(max_trials=4, recorded_ids=lambda: recorded)
    s.suggest("a"), s.suggest("b")
    s.on_trial_complete("a", {"reward": 0.1})
    path = tmp_path / "searcher.pkl"
    s.save(str(path))

    fresh = _searcher(max_trials=4, recorded_ids=lambda: recorded)
    fresh.restore(str(path))
    assert fresh.live.keys() == {"b"} and fresh.done == {"a"} and fresh.unseen == 1
    # a + b (live, re-run by Tune) + late = 3 of 4: one more trial, then the budget is spent.
    assert fresh.suggest("c") is not None
    assert fresh.suggest("d") == fresh.FINISHED
