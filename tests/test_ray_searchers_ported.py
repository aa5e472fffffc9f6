"""Ray's own searcher tests, ported to ControllerSearcher (issue 13, item 15), plus its deterministic mode.

Sources (read, not copied): ray/python/ray/tune/tests/test_searchers.py (InvalidValuesTest,
AddEvaluatedPointTest, SaveRestoreCheckpointTest, MultiObjectiveTest, testOptunaReportTooOften) and
test_searcher_utils.py (ConcurrencyLimiter, set_max_concurrency).  Ray's tests run each searcher on its
own search space; here the search space is the controller's, so every config also carries a genotype.
Tests that run trials use the module's one local Ray (``local_ray``); the rest call the Searcher API
directly, as Ray's unit tests do.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
from unittest.mock import patch

import numpy as np
import pytest

from controllers import make_controller
from search_spaces import get_space, resolve_genotype
from search_spaces.named import MNASNET_A1

pytestmark = pytest.mark.ray  # imports Ray; the tests taking `local_ray` start it (once for the module)

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune.search import ConcurrencyLimiter, Searcher  # noqa: E402

from controllers.ray_searcher import ControllerSearcher  # noqa: E402

TINY = get_space("tiny")
FAST = {"evolution": {"population": 4, "sample": 2}, "rl": {"update_every": 3, "hidden": 16}, "random": {}}


def _searcher(name="random", seed=0, space=TINY, **kw) -> ControllerSearcher:
    return ControllerSearcher(make_controller(name, space, seed=seed, settings=FAST[name]), **kw)


def _reward_of(config: dict) -> float:
    """A deterministic reward of the config's genotype (the controller's objective in these tests)."""
    codes = TINY.encode(resolve_genotype(config["genotype"]))
    return sum(codes) / sum(s - 1 for s in TINY.decision_sizes)


# -- trainables (travel to Ray's workers by value) ---------------------------------------------------------
def _invalid_objective(config):
    value = config["report"]
    if value > 4:
        tune.report({"_metric": float("inf")})
    elif value > 3:
        tune.report({"_metric": float("-inf")})
    elif value > 2:
        tune.report({"_metric": float("nan")})
    else:
        tune.report({"_metric": float(value) or 0.1})


def _dummy_objective(config):
    tune.report({"metric": config["report"]})


def _genotype_objective(config):
    tune.report({"reward": _reward_of(config), "x": config.get("x", 0.0)})


@pytest.fixture(scope="module")
def local_ray():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # Set for this module only: a leaked TUNE_DISABLE_AUTO_CALLBACK_LOGGERS takes the per-trial result
    # files and TensorBoard curves away from every later test module in the same session.
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")}
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _fit(tmp_path, trainable, searcher, num_samples, param_space=None, **tune_config):
    tuner = tune.Tuner(trainable, param_space=param_space,
                       tune_config=tune.TuneConfig(search_alg=searcher, num_samples=num_samples, reuse_actors=True,
                                                   **tune_config),
                       run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    return tuner.fit()


@contextlib.contextmanager
def _no_searcher_checkpoint_errors():
    """Ray's check_searcher_checkpoint_errors_scope: the searcher must pickle with the experiment state."""
    from ray.tune.execution.tune_controller import logger

    buffer: list[str] = []
    with patch.object(logger, "warning", lambda msg, *a, **k: buffer.append(str(msg))):
        yield
    assert not any("Can't pickle" in m or "checkpointing failed" in m for m in buffer), buffer


# -- InvalidValuesTest ---------------------------------------------------------------------------------------
INVALID_SPACE = {"report": tune.uniform(0.0, 5.0), "list": [1, 2, 3], "num": 4}


def test_invalid_values_with_metric_and_mode_from_tune_config(local_ray, tmp_path):
    """NaN/inf results are failed trials, constants survive, the Float domain is resolved per trial, and
    TuneConfig's metric/mode reach the searcher (the searcher itself was given neither)."""
    searcher = _searcher("evolution", seed=4)
    with _no_searcher_checkpoint_errors():
        grid = _fit(tmp_path, _invalid_objective, ConcurrencyLimiter(searcher, 2), 8, param_space=INVALID_SPACE,
                    metric="_metric", mode="max")
    assert searcher.metric == "_metric" and searcher.mode == "max"
    configs = [r.config for r in grid]
    assert len(configs) == 8
    assert all(isinstance(c["report"], float) and 0.0 <= c["report"] <= 5.0 for c in configs)
    assert len({c["report"] for c in configs}) == 8  # sampled per trial, not one value for all
    assert all(c["list"] == [1, 2, 3] and c["num"] == 4 and isinstance(c["genotype"], str) for c in configs)
    best = grid.get_best_result(metric="_metric", mode="max", filter_nan_and_inf=True)
    assert best.config["report"] <= 2.0
    invalid = sum(c["report"] > 2.0 for c in configs)
    stats = searcher.controller.stats()
    assert stats["told"] == 8 and stats["failed"] == invalid
    valid = [c["report"] for c in configs if c["report"] <= 2.0]
    assert stats["best_reward"] == pytest.approx(max(valid) or 0.1)


def test_mode_min_from_tune_config_minimises(local_ray, tmp_path):
    searcher = _searcher("random", seed=1)
    space = {"x": tune.uniform(0.0, 1.0)}
    grid = _fit(tmp_path, _genotype_objective, searcher, 6, param_space=space, metric="x", mode="min")
    xs = [r.config["x"] for r in grid]
    assert searcher.mode == "min"
    # The controller maximises -x: its best is the smallest x, negated (mode='min' is not maximised).
    assert searcher.controller.best[1] == pytest.approx(-min(xs))


def test_tune_config_metric_without_param_space_is_a_clear_error(local_ray, tmp_path):
    """Ray gives TuneConfig's metric to a searcher only with a param_space; the searcher says so."""
    with pytest.raises(Exception, match="together with a non-empty param_space"):
        _fit(tmp_path, _genotype_objective, _searcher(), 2, metric="reward", mode="max")


def test_metric_given_to_the_searcher_works_without_param_space(local_ray, tmp_path):
    searcher = _searcher("evolution", metric="reward", mode="max", points_to_evaluate=[
        {"genotype": TINY.decode([s - 1 for s in TINY.decision_sizes]).to_string()}])
    grid = _fit(tmp_path, _genotype_objective, searcher, 4)
    assert len(grid) == 4 and not grid.errors
    stats = searcher.controller.stats()
    assert stats["told"] == 4 and stats["from_queue"] == 1 and searcher.controller.best[1] == 1.0  # the best point


# -- AddEvaluatedPointTest ---------------------------------------------------------------------------------
def _point(seed: int = 0) -> dict:
    return {"genotype": TINY.sample(np.random.default_rng(seed)).to_string()}


def test_add_evaluated_point():
    searcher = _searcher("evolution", metric="metric", mode="max")
    stats = searcher.controller.stats
    assert stats()["added"] == 0
    searcher.add_evaluated_point(_point(0), 1.0, intermediate_values=[0.8, 0.9])
    assert stats()["added"] == 1 and stats()["failed"] == 0 and len(searcher.controller.population) == 1
    searcher.add_evaluated_point(_point(1), 1.0, intermediate_values=[0.8, 0.9], error=True)
    searcher.add_evaluated_point(_point(2), 1.0, intermediate_values=[0.8, 0.9], pruned=True)
    assert stats()["added"] == 3 and stats()["failed"] == 2 and len(searcher.controller.population) == 1
    config = searcher.suggest("1")
    assert config["genotype"] not in {_point(i)["genotype"] for i in range(3)}  # known points are not re-run


def test_add_evaluated_point_needs_a_genotype_and_a_mode():
    with pytest.raises(ValueError, match=r"parameters must hold 'genotype'.*\['report'\]"):
        _searcher(metric="metric", mode="max").add_evaluated_point({"report": 1.0}, 1.0)
    with pytest.raises(RuntimeError, match="needs the searcher's mode"):
        _searcher().add_evaluated_point(_point(), 1.0)
    with pytest.raises(ValueError, match="not in search space 'tiny'"):
        _searcher(metric="metric", mode="max").add_evaluated_point({"genotype": "b0"}, 1.0)


def test_add_evaluated_point_in_min_mode_is_negated():
    searcher = _searcher(metric="loss", mode="min")
    searcher.add_evaluated_point(_point(0), 0.25)
    assert searcher.controller.best[1] == -0.25


def test_points_to_evaluate_with_evaluated_rewards():
    searcher = _searcher("random", metric="metric", mode="max",
                         points_to_evaluate=[_point(0), _point(1)["genotype"]], evaluated_rewards=[1.0, 0.5])
    assert searcher.controller.stats()["added"] == 2 and searcher.controller.best[1] == 1.0
    with pytest.raises(ValueError, match="one reward per point"):
        _searcher(metric="m", mode="max", points_to_evaluate=[_point(0)], evaluated_rewards=[1.0, 2.0])


def test_points_to_evaluate_are_suggested_first():
    b0 = resolve_genotype("b0")
    a1_blocks = MNASNET_A1  # A1's blocks in the space's SiLU frame (the named mnasnet-a1 is ReLU: issue 19)
    searcher = ControllerSearcher(make_controller("evolution", get_space("mnasnet"), seed=0), metric="reward",
                                  mode="max", points_to_evaluate=["b0", {"genotype": a1_blocks}])
    assert searcher.suggest("a")["genotype"] == b0.to_string()
    assert searcher.suggest("b")["genotype"] == resolve_genotype(a1_blocks).to_string() == a1_blocks
    with pytest.raises(ValueError, match="activation relu is not in space 'mnasnet'"):
        ControllerSearcher(make_controller("evolution", get_space("mnasnet"), seed=0), metric="reward",
                           mode="max", points_to_evaluate=["mnasnet-a1"])
    with pytest.raises(ValueError, match=r"points_to_evaluate\[0\]: 'b7' is neither a genotype name"):
        _searcher(metric="m", mode="max", points_to_evaluate=["b7"])


def test_add_evaluated_trials(local_ray, tmp_path):
    """Ray's run_add_evaluated_trials: an ExperimentAnalysis, a list of trials, one trial."""
    genotypes = [_point(i)["genotype"] for i in range(4)]
    analysis = tune.run(_dummy_objective, config={"genotype": tune.grid_search(genotypes),
                                                  "report": tune.uniform(0.0, 5.0)},
                        metric="metric", mode="max", storage_path=str(tmp_path), verbose=0, reuse_actors=True)
    base = _searcher("evolution", metric="metric", mode="max")
    for source, count in ((analysis, 4), (analysis.trials, 4), (analysis.trials[0], 1)):
        searcher = copy.deepcopy(base)
        searcher.add_evaluated_trials(source, "metric")
        assert searcher.controller.stats()["added"] == count and len(searcher.controller.population) == count
        assert searcher.suggest("1")["genotype"] not in genotypes


# -- SaveRestoreCheckpointTest -----------------------------------------------------------------------------
def _on_trial_callbacks(searcher, trial_id):
    result = {"training_iteration": 1, "metric": 1, "config/a": 1.0, "time_total_s": 1}
    searcher.on_trial_result(trial_id, result)
    searcher.on_trial_complete(trial_id, result)


def test_save_restore_without_set_search_properties(tmp_path):
    path = str(tmp_path / "checkpoint.pkl")
    searcher = _searcher("evolution", seed=3)
    searcher.set_search_properties(metric="metric", mode="max", config={"a": tune.uniform(0.0, 5.0)})
    searcher.suggest("1")
    searcher.suggest("2")
    searcher.suggest("not_completed")
    _on_trial_callbacks(searcher, "1")
    searcher.save(path)

    restored = _searcher("evolution", seed=99)  # restoration needs no set_search_properties
    restored.restore(path)
    assert restored.metric == "metric" and restored.mode == "max"
    _on_trial_callbacks(restored, "2")
    config = restored.suggest("3")
    assert 0.0 <= config["a"] <= 5.0 and isinstance(config["a"], float)
    _on_trial_callbacks(restored, "3")
    assert "not_completed" in restored.live  # suggested before the save, never completed: still tracked
    # The restored searcher continues exactly as the original would.
    _on_trial_callbacks(searcher, "2")
    assert searcher.suggest("3") == config


def test_report_after_complete_does_not_fail():
    """Ray's testOptunaReportTooOften."""
    searcher = _searcher(metric="metric", mode="max")
    searcher.suggest("trial_1")
    searcher.on_trial_result("trial_1", {"training_iteration": 1, "metric": 1})
    searcher.on_trial_complete("trial_1", {"training_iteration": 2, "metric": 1})
    searcher.on_trial_result("trial_1", {"training_iteration": 3, "metric": 1})
    searcher.on_trial_complete("trial_1", {"training_iteration": 4, "metric": 1})
    assert searcher.controller.stats()["told"] == 1


# -- MultiObjectiveTest: one reward only, said clearly --------------------------------------------------------
def test_several_metrics_are_a_clear_error():
    with pytest.raises(ValueError, match="optimises one metric"):
        _searcher(metric=["a", "b"], mode=["max", "min"])
    with pytest.raises(ValueError, match="optimises one metric"):
        _searcher().set_search_properties(["a", "b"], ["max", "min"], {})


def test_bad_mode_and_conflicting_metric():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'maximise'"):
        _searcher(metric="reward", mode="maximise")
    searcher = _searcher(metric="reward", mode="max")
    with pytest.raises(ValueError, match="built with metric='reward' but the Tuner passes metric='acc'"):
        searcher.set_search_properties("acc", None, {"x": 1})
    assert searcher.set_search_properties("reward", "max", {"x": 1})  # the same values are fine


# -- param_space ------------------------------------------------------------------------------------------
def test_param_space_domains_are_resolved_with_the_searchers_seed(tmp_path):
    space = {"lr": tune.loguniform(1e-4, 1e-1), "opt": tune.choice(["sgd", "adam"]),
             "nested": {"wd": tune.uniform(0.0, 0.1), "fixed": 3},
             "double": tune.sample_from(lambda spec: spec.config.nested.fixed * 2)}
    configs = []
    for _ in range(2):
        searcher = _searcher(metric="reward", mode="max", seed=5)
        assert searcher.set_search_properties(None, None, space)
        configs.append([searcher.suggest(str(i)) for i in range(4)])
    assert configs[0] == configs[1]  # the searcher's seeded generator, not the global one
    for c in configs[0]:
        assert 1e-4 <= c["lr"] <= 1e-1 and c["opt"] in ("sgd", "adam") and 0.0 <= c["nested"]["wd"] <= 0.1
        assert c["nested"]["fixed"] == 3 and c["double"] == 6 and isinstance(c["genotype"], str)
    assert len({c["lr"] for c in configs[0]}) == 4
    searcher.save(str(tmp_path / "s.pkl"))  # the sample_from lambda is saved too (cloudpickle)
    fresh = _searcher(metric="reward", mode="max", seed=5)
    fresh.restore(str(tmp_path / "s.pkl"))
    assert fresh.suggest("4") == searcher.suggest("4") and fresh.suggest("5")["double"] == 6


def test_param_space_grid_search_or_genotype_is_rejected():
    with pytest.raises(ValueError, match=r"param_space\['opt'\] is a grid_search.*tune.choice"):
        _searcher().set_search_properties("m", "max", {"opt": tune.grid_search(["a", "b"])})
    with pytest.raises(ValueError, match=r"param_space\['genotype'\] is set by ControllerSearcher"):
        _searcher().set_search_properties("m", "max", {"genotype": "b0"})


def test_missing_metric_in_a_result_is_warned_once(caplog):
    searcher = _searcher(metric="reward", mode="max")
    searcher.suggest("a"), searcher.suggest("b")
    with caplog.at_level(logging.WARNING, logger="controllers.ray_searcher"):
        searcher.on_trial_complete("a", {"acc": 0.5})
        searcher.on_trial_complete("b", {"acc": 0.6})
    assert [r.getMessage() for r in caplog.records if "reported no 'reward'" in r.getMessage()] == [
        "trial a reported no 'reward' (its result has acc); told as failed; set metric= to the name the "
        "trainable reports"]
    assert searcher.controller.stats()["failed"] == 2


# -- test_searcher_utils: ConcurrencyLimiter ------------------------------------------------------------------
def test_concurrency_limiter_limits_and_tells_the_searcher_its_limit():
    searcher = _searcher(metric="reward", mode="max")
    limiter = ConcurrencyLimiter(searcher, max_concurrent=2)
    assert searcher.max_concurrent == 2 and limiter._limit_concurrency
    assert limiter.suggest("t1") and limiter.suggest("t2")
    assert limiter.suggest("t3") is None
    state = limiter.get_state()
    limiter2 = ConcurrencyLimiter(searcher, max_concurrent=3)
    limiter2.set_state(state)
    assert limiter2.suggest("t4") is None
    limiter2.on_trial_complete("t1", {"reward": 0.5})
    limiter2.on_trial_complete("t2", {"reward": 0.5})
    assert limiter2.suggest("t3") is not None


def test_max_trials_then_finished():
    searcher = _searcher(metric="reward", mode="max", max_trials=2)
    assert searcher.suggest("a") and searcher.suggest("b")
    assert searcher.suggest("c") == Searcher.FINISHED


# -- deterministic mode (issue 13, item 8) ------------------------------------------------------------------
def _simulate(name: str, deterministic: bool, order: str, trials: int = 30,
              concurrent: int = 3) -> tuple[list[str], int]:
    """Tune's loop in miniature: fill the free slots, then finish one running trial chosen by ``order``."""
    searcher = _searcher(name, seed=7, metric="reward", mode="max", deterministic=deterministic, max_trials=trials)
    limiter = ConcurrencyLimiter(searcher, max_concurrent=concurrent)
    pick = np.random.default_rng(123)
    proposals, running, configs, waits, n = [], [], {}, 0, 0
    while True:
        while True:
            config = limiter.suggest(f"t{n}")
            if config is None or config == Searcher.FINISHED:
                waits += config is None and len(running) < concurrent
                break
            configs[f"t{n}"] = config
            running.append(f"t{n}")
            proposals.append(config["genotype"])
            n += 1
        if not running:
            break
        index = {"oldest": 0, "newest": len(running) - 1, "random": int(pick.integers(len(running)))}[order]
        trial = running.pop(index)
        limiter.on_trial_complete(trial, {"reward": _reward_of(configs[trial])})
    assert len(proposals) == trials and searcher.controller.stats()["told"] == trials
    return proposals, waits


@pytest.mark.parametrize("name", ["evolution", "rl"])
def test_deterministic_mode_gives_the_same_proposals_in_any_completion_order(name):
    runs = {order: _simulate(name, True, order) for order in ("oldest", "newest", "random")}
    assert runs["oldest"][0] == runs["newest"][0] == runs["random"][0]
    assert runs["oldest"][1] == 0 and runs["newest"][1] > 0  # in-order completions never wait; others do
    free = {order: _simulate(name, False, order)[0] for order in ("oldest", "newest")}
    assert free["oldest"] != free["newest"]  # the documented default: the order changes the proposals
    assert free["oldest"] == runs["oldest"][0]  # in ask order both modes tell the same results at each ask


def test_deterministic_mode_needs_a_concurrency_limit():
    searcher = _searcher(metric="reward", mode="max", deterministic=True)
    with pytest.raises(RuntimeError, match=r"needs a concurrency limit: wrap it in ConcurrencyLimiter"):
        searcher.suggest("a")


def test_deterministic_buffer_survives_save_and_restore(tmp_path):
    path = str(tmp_path / "s.pkl")
    a = _searcher("evolution", seed=1, metric="reward", mode="max", deterministic=True)
    a.set_max_concurrency(2)
    configs = {t: a.suggest(t) for t in ("t0", "t1")}
    a.on_trial_complete("t1", {"reward": _reward_of(configs["t1"])})  # t0 still running: t1 is held back
    assert a.suggest("t2") is None and a.controller.stats()["told"] == 0
    a.save(path)
    b = _searcher("evolution", seed=1, deterministic=True)
    b.set_max_concurrency(2)
    b.restore(path)
    for s in (a, b):
        s.on_trial_complete("t0", {"reward": _reward_of(configs["t0"])})
    assert a.suggest("t2") == b.suggest("t2") and b.controller.stats()["told"] == 1
    b.flush()
    assert b.controller.stats()["told"] == 2 and math.isfinite(b.controller.stats()["best_reward"])
