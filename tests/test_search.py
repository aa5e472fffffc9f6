"""The Ray Tune search end to end, in one local Ray started once for this module."""

from __future__ import annotations

import json
import os
import time

import pytest
import yaml

from nas.search import results
from nas.experiment.search import load_experiment
from nas.experiment.search import build_controller
from nas.evaluators.outcome import TrialResult
from search_helpers import event_tags, run_search, small

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    import sys

    import ray
    from ray import cloudpickle

    # The trial functions below travel to Ray's workers by value (tests/ is not on their path).
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # One fake GPU: Ray schedules GPU fractions on it (CUDA_VISIBLE_DEVICES is set per trial).
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_search_writes_every_output(tmp_path):
    exp = load_experiment(data=small(tmp_path))
    lines = []
    outcome = run_search(exp, progress=lines.append)
    rows = results.read_trials(outcome.run_dir)
    assert len(rows) == 6 and len({r["trial_id"] for r in rows}) == 6
    assert all(r["status"] == "ok" for r in rows), rows
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["macs"] > 0 and r["params"] > 0 for r in rows)
    best = yaml.safe_load((outcome.run_dir / "best.yaml").read_text())
    assert best["reward"] == max(r["reward"] for r in rows)
    assert set(best) >= {"genotype", "blocks", "timm", "reward", "accuracy", "macs", "params"}
    assert (outcome.run_dir / "pareto.csv").read_text().startswith("trial_id,accuracy,macs")
    assert (outcome.run_dir / "pareto.png").stat().st_size > 1000
    assert yaml.safe_load((outcome.run_dir / "config.yaml").read_text())["space"] == "tiny"
    trial_lines = [line for line in lines if " | c0" in line]  # one line per trial (heartbeats aside)
    assert len(trial_lines) == 6 and trial_lines[-1].startswith("[6/6]") and "ETA" in trial_lines[-1]
    # TensorBoard: search-level scalars and per-trial curves.
    tags = event_tags(outcome.run_dir / "tensorboard")
    assert {"search/reward", "search/best_reward", "search/accuracy", "search/macs"} <= tags
    trial_tags = event_tags(outcome.run_dir) - tags
    assert any(t.endswith("accuracy") for t in trial_tags), trial_tags


def test_rl_controller_logs_policy_scalars(tmp_path):
    cfg = small(tmp_path, controller={"name": "rl", "seed": 1, "settings": {"update_every": 2}},
                budget={"samples": 4})
    outcome = run_search(load_experiment(data=cfg))
    assert outcome.trials == 4
    tags = event_tags(outcome.run_dir / "tensorboard")
    assert any(t.startswith("controller/") and "entropy" in t for t in tags), tags


def _raise_on_wide(genotype, experiment, on_epoch):
    if genotype.blocks[-1].filters == 32:
        raise RuntimeError(f"boom for {genotype.blocks[-1].filters} filters")
    on_epoch({"epoch": 0, "accuracy": 0.5, "loss": 1.0, "reward": 0.5})
    return TrialResult(genotype.to_string(), "ok", reward=0.5, accuracy=0.5, macs=1_000_000, params=1000)


def test_failing_trials_are_recorded_and_the_search_goes_on(tmp_path):
    exp = load_experiment(data=small(tmp_path, controller={"name": "random", "seed": 3},
                                     budget={"samples": 8}))
    outcome = run_search(exp, trial_fn=_raise_on_wide)
    rows = results.read_trials(outcome.run_dir)
    assert len(rows) == 8
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and len(failed) < 8
    assert all("boom for 32 filters" in r["reason"] for r in failed)
    assert outcome.best is not None


def _count_peers(genotype, experiment, on_epoch):
    """Stay alive until 4 trials run at once (or 60 s pass); report the most seen running together."""
    from pathlib import Path

    live = Path(experiment.output.dir) / "live"
    live.mkdir(parents=True, exist_ok=True)
    me = live / f"{os.getpid()}-{time.time_ns()}"
    me.touch()
    peak, deadline = 0, time.time() + 60
    try:
        while time.time() < deadline:
            peak = max(peak, len(list(live.iterdir())))
            if peak >= 4:
                time.sleep(1.0)  # let a 5th trial show up, if the scheduler would allow one
                peak = max(peak, len(list(live.iterdir())))
                break
            time.sleep(0.05)
    finally:
        me.unlink()
    on_epoch({"epoch": 0, "accuracy": 0.1, "reward": 0.1, "peak": peak, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
              "channels_last": experiment.proxy.channels_last})
    return TrialResult(genotype.to_string(), "ok", reward=0.1, accuracy=0.1, macs=1_000_000, params=1)


def test_quarter_gpu_trials_run_four_at_a_time(tmp_path):
    cfg = small(tmp_path, controller={"name": "random", "seed": 0}, budget={"samples": 8},
                resources={"cpus_per_trial": 0.25, "gpus_per_trial": 0.25, "max_concurrent": 8})
    outcome = run_search(load_experiment(data=cfg), trial_fn=_count_peers)
    finals = []
    for trial_dir in outcome.run_dir.iterdir():
        result_file = trial_dir / "result.json"
        if result_file.is_file():
            finals.append(next(r for r in map(json.loads, result_file.read_text().splitlines()) if "peak" in r))
    assert len(finals) == 8
    peak = max(f["peak"] for f in finals)
    assert peak == 4, f"expected 4 trials at a time on one (fake) GPU, saw {peak}"
    assert {f["gpus"] for f in finals} == {"0"}  # Ray set CUDA_VISIBLE_DEVICES for every trial
    assert {f["channels_last"] for f in finals} == {"on"}  # the layout that packs (nas.proxy.runtime.for_gpu_share)


def _falling_accuracy(genotype, experiment, on_epoch):
    """Trials run one at a time, each less accurate than the one before: ASHA keeps the first, stops the rest."""
    from pathlib import Path

    counter = Path(experiment.output.dir) / "started"
    k = len(counter.read_text()) if counter.exists() else 0
    counter.write_text("x" * (k + 1))
    accuracy = round(0.9 - 0.1 * k, 4)
    for epoch in range(1, experiment.proxy.epochs + 1):
        on_epoch({"epoch": epoch, "accuracy": accuracy, "reward": accuracy, "macs": 1_000_000, "params": 1000})
    return TrialResult(genotype.to_string(), "ok", accuracy=accuracy, reward=accuracy, epochs=experiment.proxy.epochs,
                       macs=1_000_000, params=1000)


def test_trials_stopped_by_asha_are_stopped_end_to_end(tmp_path, monkeypatch):
    import nas.search.stages

    told = []

    def recording_controller(experiment, noise=None):
        controller = build_controller(experiment, noise)
        tell = controller.tell

        def spy(genotype, reward):
            told.append(reward)
            tell(genotype, reward)

        controller.tell = spy
        return controller

    monkeypatch.setattr(nas.search.stages, "build_controller", recording_controller)
    cfg = small(tmp_path, controller={"name": "random", "seed": 0}, budget={"samples": 4},
                proxy={"epochs": 3}, resources={"max_concurrent": 1},
                scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 2})
    outcome = run_search(load_experiment(data=cfg), trial_fn=_falling_accuracy)
    rows = sorted(results.read_trials(outcome.run_dir), key=lambda r: r["index"])
    assert [r["status"] for r in rows] == ["ok", "stopped", "stopped", "stopped"], rows
    assert [r["accuracy"] for r in rows] == [0.9, 0.8, 0.7, 0.6]
    assert [r["epochs"] for r in rows] == [3, 1, 1, 1]  # a stopped trial ran one epoch: the grace period
    assert all(r["reason"] == "stopped early by the scheduler" for r in rows[1:])
    assert all(r["reward"] == r["accuracy"] and r["macs"] == 1_000_000 for r in rows)  # its last epoch's numbers
    # the controller learns the full-length trial's reward; a stopped one is told as None (Optuna's PRUNED)
    assert told == [0.9, None, None, None]
    assert outcome.trials == 4 and outcome.failed == 0 and outcome.best["accuracy"] == 0.9
