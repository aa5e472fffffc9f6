"""The one search session (nas.search.session) and its batch pump: every rule once, for every evaluator.

The evaluator here is a tiny in-process test double (a deterministic reward of the genotype), to isolate the
session's rules from Ray and torch; the real evaluators run through the same session in test_search_verify.py,
test_search.py and test_interrupts.py.
"""

from __future__ import annotations

import json

import pytest

from controllers import make_controller
from nas.errors import SearchInterrupted, SearchStopped
from nas.evaluators.base import EvaluatorInfo
from nas.evaluators.outcome import TrialResult
from nas.experiment.run_dir import STATE
from nas.search import results
from nas.search.batches import InProcessPool, pump_batches
from nas.search.session import (CANDIDATES, ControllerProposer, ListProposer, Session, meaningless, read_candidates,
                                run_pump)
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


class Double:
    """The test double of an evaluator: ``score`` a batch in this process; crashes after ``crash_after`` calls."""

    def __init__(self, crash_after: int | None = None, interrupt_after: int | None = None, score=_score) -> None:
        self.calls, self.crash_after, self.interrupt_after, self.scorer = 0, crash_after, interrupt_after, score

    def score(self, genotypes):
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise Crash()
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        return [self.scorer(g) for g in genotypes]


class CrashingSession(Session):
    """Dies (like SIGKILL) after ``limit`` rows: between recording a batch and saving the state."""

    limit = 10**9

    def _save(self, throttle: bool = False) -> None:
        if len(self.recorder.rows) >= self.limit:
            raise Crash()
        super()._save(throttle)


def _proposer():
    return ControllerProposer(make_controller("evolution", get_space("tiny"), seed=3,
                                              settings={"population": 6, "sample": 3}))


def _session(run_dir, resume=False, total=37, cls=Session, **kw):
    return cls(run_dir, _proposer(), total, resume=resume, **kw)


def _run(run_dir, evaluator=None, resume=False, total=37, batch=4, cls=Session, **kw):
    session = _session(run_dir, resume, total, cls, **kw)
    evaluator = evaluator or Double()
    return session, run_pump(session, lambda s: pump_batches(s, InProcessPool(evaluator), batch))


def test_budget_is_exact_and_rows_are_ordered(tmp_path):
    session, summary = _run(tmp_path)
    rows = results.read_trials(tmp_path)
    assert len(rows) == 37 == summary["trials"]
    assert [r["trial_id"] for r in rows] == [f"c{i:05d}" for i in range(37)]
    assert any(r["status"] == "failed" for r in rows) and any(r["status"] == "ok" for r in rows)
    state = json.loads((tmp_path / STATE).read_text())
    assert state["next_index"] == 37 and state["pending"] == []
    assert len(read_candidates(tmp_path)) == 37 and (tmp_path / results.BEST).is_file()


@pytest.mark.parametrize("crash", ["while scoring", "after recording"])
def test_resume_after_a_crash_loses_and_repeats_nothing(tmp_path, crash):
    clean = tmp_path / "clean"
    _run(clean)
    expected = [(r["trial_id"], r["genotype"]) for r in results.read_trials(clean)]
    run = tmp_path / "crashed"
    with pytest.raises(Crash):
        if crash == "while scoring":
            _run(run, Double(crash_after=4))
        else:
            CrashingSession.limit = 10
            _run(run, cls=CrashingSession)
    before = results.read_trials(run)
    assert 0 < len(before) < 37
    session, _ = _run(run, resume=True)
    lines = (run / results.TRIALS).read_text().splitlines()
    rows = results.read_trials(run)
    assert len(lines) == len(rows) == 37                       # every candidate once, none twice
    assert [(r["trial_id"], r["genotype"]) for r in rows] == expected  # the same search as without the crash
    if crash == "after recording":
        assert session.told_from_rows > 0  # recorded before the crash, told to the restored controller from its row


def test_a_torn_last_row_is_scored_again_and_the_budget_is_exact(tmp_path):
    with pytest.raises(SearchInterrupted):
        _run(tmp_path, Double(interrupt_after=5))
    path = tmp_path / results.TRIALS
    text = path.read_text()
    lines = text.splitlines()
    torn_id = json.loads(lines[-1])["trial_id"]
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])  # the last row torn mid-write
    _run(tmp_path, resume=True)
    rows = results.read_trials(tmp_path)
    assert len(rows) == 37 and len({r["trial_id"] for r in rows}) == 37
    assert torn_id in {r["trial_id"] for r in rows}  # scored again, not lost
    clean = tmp_path / "clean"
    _run(clean)
    assert {(r["trial_id"], r["genotype"]) for r in rows} == {(r["trial_id"], r["genotype"])
                                                           for r in results.read_trials(clean)}


def test_an_interrupt_writes_the_summary_and_names_the_stage_and_the_resume_command(tmp_path):
    with pytest.raises(SearchInterrupted) as err:
        _run(tmp_path / "run", Double(interrupt_after=3), stage="baseline", root=tmp_path)
    message = str(err.value)
    assert message.startswith("baseline interrupted after 12 of 37 candidates")
    assert message.endswith(f"continue the whole run with: nas search {tmp_path} --resume")
    assert (tmp_path / "run" / results.BEST).is_file()


def test_a_grown_budget_continues_a_finished_session(tmp_path):
    _run(tmp_path, total=20)
    first = results.read_trials(tmp_path)
    _run(tmp_path, resume=True, total=30)
    rows = results.read_trials(tmp_path)
    assert len(rows) == 30 and rows[:20] == first
    assert [r["trial_id"] for r in rows] == [f"c{i:05d}" for i in range(30)]


def test_the_time_limit_counts_search_time_over_sessions(tmp_path):
    import time

    slow = Double(score=lambda g: (time.sleep(0.05), _score(g))[1])
    _run(tmp_path, slow, time_limit_s=0.3, batch=1)
    first = len(results.read_trials(tmp_path))
    assert 2 <= first < 37
    spent = json.loads((tmp_path / STATE).read_text())["search_s"]
    assert spent >= 0.3
    _run(tmp_path, slow, resume=True, time_limit_s=0.3, batch=1)
    assert len(results.read_trials(tmp_path)) == first  # the limit is spent: nothing more runs
    _run(tmp_path, slow, resume=True, time_limit_s=0.6, batch=1)
    assert first < len(results.read_trials(tmp_path)) < 37


def test_the_first_failures_of_a_session_stop_it_with_their_reason(tmp_path):
    failing = Double(score=lambda g: TrialResult(g, "failed", f"OSError: shard {len(g) % 7} unreadable"))
    with pytest.raises(SearchStopped, match=r"search stopped: the first 3 trials all failed with: OSError: shard"):
        _run(tmp_path, failing, batch=1)
    assert len(results.read_trials(tmp_path)) == 3


def test_a_resume_without_state_learns_from_the_rows(tmp_path):
    _run(tmp_path, total=10)
    (tmp_path / STATE).unlink()
    _run(tmp_path, resume=True, total=15)
    rows = results.read_trials(tmp_path)
    assert len(rows) == 15 and len({r["genotype"] for r in rows}) == 15  # none proposed twice


def test_scores_at_chance_level_and_scores_below_the_noise_are_called_meaningless(tmp_path):
    info = EvaluatorInfo(chance=0.1, noise=0.01)
    flat = [{"accuracy": a} for a in (0.09, 0.1, 0.11, 0.095)]
    assert "chance level" in meaningless(flat, info)
    tight = [{"accuracy": a} for a in (0.40, 0.405, 0.41)]
    assert "below the evaluator's own noise" in meaningless(tight, info)
    assert meaningless([{"accuracy": a} for a in (0.3, 0.4, 0.5)], info) is None
    lines = []
    chance = Double(score=lambda g: TrialResult(g, "ok", accuracy=0.1, reward=0.1, macs=1, params=1))
    session, _ = _run(tmp_path, chance, total=25, info=info, progress=lines.append)
    assert any(line.startswith("warning (search): every scored candidate sits at chance level") for line in lines)
    assert json.loads((tmp_path / STATE).read_text())["warnings"] == session.warnings != []


def test_progress_lines_carry_rate_and_eta(tmp_path):
    lines = []
    _run(tmp_path, total=12, progress=lines.append)
    assert lines and lines[-1].startswith("[12/12] ") and "ETA" in lines[-1] and "candidates/s" in lines[-1]


def test_a_fixed_list_is_asked_in_order_and_resumes(tmp_path):
    from search_spaces import resolve_genotype

    items = [(resolve_genotype(g).to_string(), {"seed": s}) for g in ("b0", "mnasnet-a1") for s in (0, 1)]
    seen = []

    def score(g):
        seen.append(g)
        return _score(g)

    with pytest.raises(SearchInterrupted):
        s = Session(tmp_path, ListProposer(items), 4, stage="verify", unit="trials")
        run_pump(s, lambda s: pump_batches(s, InProcessPool(Double(interrupt_after=1, score=score)), 2))
    s = Session(tmp_path, ListProposer(items), 4, stage="verify", unit="trials", resume=True)
    run_pump(s, lambda s: pump_batches(s, InProcessPool(Double(score=score)), 2))
    rows = results.read_trials(tmp_path)
    assert [(r["genotype"], r["seed"]) for r in rows] == [(g, e["seed"]) for g, e in items]
    assert (tmp_path / CANDIDATES).is_file()


def test_a_new_evaluator_kind_runs_through_the_same_stage_without_ray(tmp_path, monkeypatch):
    """A third kind (e.g. a benchmark table) needs only an EvaluatorKind: check, build, placement "driver"."""
    import nas.search.stages as stages
    from nas.evaluators.base import EvaluatorKind
    from nas.experiment.search import load_experiment
    from search_helpers import small

    kind = EvaluatorKind("double", check=lambda exp, address=None: EvaluatorInfo(chance=0.1, noise=0.01),
                         build=lambda exp: Double(), placement=lambda exp: "driver")
    monkeypatch.setattr(stages, "get_kind", lambda name: kind)
    exp = load_experiment(data=small(tmp_path, budget={"samples": 25}))
    lines = []
    summary = stages.run_search_stage(exp, progress=lines.append, info=kind.check(exp))
    assert summary["trials"] == 25 and len(results.read_trials(exp.run_dir)) == 25
    import sys

    assert lines[-1].startswith("[25/25]")
    assert not ("ray" in sys.modules and sys.modules["ray"].is_initialized())  # no Ray started


def test_a_supernet_that_learned_nothing_is_called_so_before_the_search():
    from nas.evaluators.supernet import _trained_warnings

    meta = {"epoch": 6, "history": [{"accuracy_largest": 0.104, "accuracy_smallest": 0.099}]}
    (text,) = _trained_warnings(meta, chance=0.1, noise=0.0095)
    assert "scored 0.104 held-out accuracy after 6 epoch(s), chance level for 10 classes is 0.100" in text
    meta["history"][-1]["accuracy_largest"] = 0.32
    assert _trained_warnings(meta, chance=0.1, noise=0.0095) == []


def test_plot_ticks_tell_neighbours_apart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    from nas.search.report import _readable_ticks

    fig, ax = plt.subplots()
    ax.plot([0.20285, 0.20390], [0.125, 0.115], "o")  # a range of 0.001: "%.3f" would repeat labels
    _readable_ticks(ax, MaxNLocator, FormatStrFormatter)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert len(labels) == len(set(labels)) >= 2 and len(labels) <= 6, labels
