"""A search's safety and its run dir's life: loopback-only Ray, resume where the run dir is, torn rows.

One local Ray for the module, started the way ``nas search`` starts it (``nas.ray.local.start_local_ray``).
"""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from nas.experiment.search import load_experiment
from nas.search import results
from net_helpers import is_loopback, listening, process_tree
from search_helpers import run_search, small

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import sys

    import ray
    from ray import cloudpickle

    from nas.ray.local import start_local_ray

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the trial functions below travel by value
    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 3-trial search (its run dir is copied by the tests that change it)."""
    tmp = tmp_path_factory.mktemp("finished")
    outcome = run_search(load_experiment(data=small(tmp, budget={"samples": 3})))
    assert outcome.trials == 3
    return outcome.run_dir


def test_the_local_ray_listens_on_loopback_only(finished_run):
    import ray

    sockets = listening(process_tree(os.getpid()))
    # The GCS, the raylet (2 ports), this driver's and the reused workers' gRPC servers at least.
    assert len(sockets) >= 5, sockets
    outside = [s for s in sockets if not is_loopback(s[1])]
    assert outside == [], f"listening beyond loopback: {outside}"
    assert ray.util.get_node_ip_address() == "127.0.0.1"


def _nas(*argv: str) -> int:
    from nas.cli import main

    return main(list(argv))


def _copy(run_dir, where):
    target = where / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def test_a_moved_run_dir_resumes_where_it_is_with_a_grown_budget_and_a_torn_row(finished_run, tmp_path, capsys,
                                                                                caplog):
    moved = tmp_path / "elsewhere" / "moved"
    shutil.move(str(_copy(finished_run, tmp_path)), moved)
    with open(moved / results.TRIALS, "a", encoding="utf-8") as f:
        f.write('{"trial_id": "torn", "sta')  # a crash mid-write
    before = (finished_run / results.TRIALS).read_text()
    assert _nas("search", str(moved), "--resume", "--set", "budget.samples=4") == 0
    out = capsys.readouterr().out
    assert "resume: budget.samples 3 -> 4 (config.yaml updated)" in out and "[4/4]" in out, out
    rows = results.read_trials(moved)
    assert len(rows) == 4 and len({r["genotype"] for r in rows}) == 4  # the new trial is a new genotype
    lines = (moved / results.TRIALS).read_text().splitlines()
    assert len(lines) == 5 and lines[3] == '{"trial_id": "torn", "sta'  # the fragment kept on its own line
    assert any("line 4 is not a whole trial row" in r.getMessage() for r in caplog.records)
    assert (finished_run / results.TRIALS).read_text() == before  # the original is not touched
    stored = yaml.safe_load((moved / results.CONFIG).read_text())
    assert stored["budget"]["samples"] == 4 and stored["output"]["dir"] == str(moved.parent)
    assert yaml.safe_load((moved / results.BEST).read_text())["reward"] == max(r["reward"] for r in rows)


def test_lost_tune_state_rebuilds_the_summary_and_continues_from_the_records(finished_run, tmp_path, capsys):
    run = _copy(finished_run, tmp_path)
    for path in run.iterdir():
        if path.name not in (results.TRIALS, results.CONFIG):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert _nas("search", str(run), "--resume") == 0  # the budget is met: the summary only
    assert (run / results.BEST).is_file() and len(results.read_trials(run)) == 3
    assert "done: 3 trials" in capsys.readouterr().out
    assert _nas("search", str(run), "--resume", "--set", "budget.samples=5") == 0
    rows = results.read_trials(run)
    assert len(rows) == 5 and len({r["genotype"] for r in rows}) == 5, rows
    assert [r["index"] for r in rows] == list(range(5))


def _quick(genotype, experiment, on_epoch):
    """A trial in no time: reward from the genotype's MACs on the target (so the controller has a signal)."""
    from nas.evaluators.outcome import TrialResult

    on_epoch({"epoch": 1, "accuracy": 0.5, "reward": 0.5})
    return TrialResult(genotype.to_string(), "ok", accuracy=0.5, reward=0.5, macs=1_000_000, params=1, epochs=1)


def _always_fails(genotype, experiment, on_epoch):
    import random

    raise ValueError(f"data shard {random.randint(0, 10_000)} is unreadable")


def test_a_search_whose_first_trials_all_fail_alike_stops_with_the_reason(tmp_path):
    from nas.errors import SearchStopped

    exp = load_experiment(data=small(tmp_path, budget={"samples": 8}))
    with pytest.raises(SearchStopped, match=r"the first 3 trials all failed with: ValueError: data shard \d+ is "
                                            r"unreadable; fix that") as err:
        run_search(exp, trial_fn=_always_fails)
    assert len(str(err.value).splitlines()) == 1
    rows = results.read_trials(exp.run_dir)
    assert 3 <= len(rows) <= 4 and all(r["status"] == "failed" for r in rows), rows  # 8 budgeted, <= 4 spent


def test_an_infeasible_proposal_mid_search_keeps_the_run_and_a_wider_bound_continues_it(tmp_path):
    from nas.errors import SearchStopped

    # The random controller with seed 5 meets cost_max in its first 3 asks, not in its 4th (max_tries 1);
    # the up-front check (its own sampling) passes.
    cfg = small(tmp_path, controller={"name": "random", "seed": 5, "cost_max": 5e6, "max_tries": 1},
                budget={"samples": 6})
    exp = load_experiment(data=cfg)
    with pytest.raises(SearchStopped, match=r"search stopped after \d trial\(s\): .*widen controller.cost_min/"
                                            r"cost_max or raise controller.max_tries") as err:
        run_search(exp, trial_fn=_quick)
    assert f"nas search {exp.run_dir} --resume --set controller.cost_max=" in str(err.value)
    done = results.read_trials(exp.run_dir)
    assert 1 <= len(done) <= 3 and (exp.run_dir / results.BEST).is_file()
    assert _nas("search", str(exp.run_dir), "--resume", "--set", "controller.cost_max=1e12") == 0
    rows = results.read_trials(exp.run_dir)
    assert len(rows) == 6 and len({r["genotype"] for r in rows}) == 6
    assert yaml.safe_load((exp.run_dir / results.CONFIG).read_text())["controller"]["cost_max"] == 1e12
