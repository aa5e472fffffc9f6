"""The table evaluator: lookups, the seed/mean protocols, missing networks, count checks (no Ray, no torch work)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.data.tables import load_table
from nas.evaluators import get_kind
from nas.evaluators.table import TableEvaluator, check, seeded_index
from nas.experiment.search import load_experiment

MACRO = {"space": "nas-bench-macro", "evaluator": {"kind": "table", "table": "nas-bench-macro"},
         "objective": {"cost": "macs", "target": 3.0e7, "w": -0.07}, "target": {"resolution": 32, "num_classes": 10},
         "baseline": "none", "verify": {"top_k": 0}}


def _exp(tmp_path, **changes):
    cfg = {**MACRO, "output": {"dir": str(tmp_path), "name": "t"}}
    for key, value in changes.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return load_experiment(data=cfg)


@pytest.fixture(scope="module")
def macro():
    return load_table("nas-bench-macro")


def test_mean_is_the_tables_mean_and_cost_the_targets(tmp_path, macro):
    exp = _exp(tmp_path, evaluator={"sample": "mean"})
    ev = TableEvaluator.from_experiment(exp)
    genotype, record = next(iter(macro.networks()))
    result = ev.score([genotype])[0]
    assert result.ok and result.accuracy == pytest.approx(record.mean)
    assert (result.params, result.macs) == (record.params, record.macs)  # target at the table's size
    assert get_kind("table").placement(exp) == "driver"


def test_seed_draws_one_recorded_run_deterministically(tmp_path, macro):
    rng = np.random.default_rng(0)
    space = _exp(tmp_path).search_space
    texts = [space.sample(rng).to_string() for _ in range(60)]
    a = [r.accuracy for r in TableEvaluator.from_experiment(_exp(tmp_path)).score(texts)]
    b = [r.accuracy for r in TableEvaluator.from_experiment(_exp(tmp_path)).score(texts)]
    other = [r.accuracy for r in TableEvaluator.from_experiment(_exp(tmp_path, controller={"seed": 7})).score(texts)]
    assert a == b and a != other
    for text, acc in zip(texts, a):
        from search_spaces import Genotype

        assert acc in macro.lookup(Genotype.from_string(text)).accuracies
    draws = {seeded_index(s, "k", 3) for s in range(50)}
    assert draws == {0, 1, 2}


def test_a_network_missing_from_the_table_is_a_clean_failed_trial(tmp_path):
    path = tmp_path / "one.json"
    space = _exp(tmp_path).search_space
    rng = np.random.default_rng(1)
    kept, other = space.sample(rng), space.sample(rng)
    path.write_text(json.dumps({"format": "effnas-table/1", "networks": {kept.to_string(): {"accuracy": [0.5]}}}))
    ev = TableEvaluator.from_experiment(_exp(tmp_path, evaluator={"table": str(path)}))
    ok, missing = ev.score([kept, other.to_string()])
    assert ok.ok and ok.accuracy == 0.5
    assert missing.status == "failed" and "not in table 'one'" in missing.reason and missing.macs > 0


def test_counts_that_differ_from_the_targets_are_a_warning(tmp_path):
    info = check(_exp(tmp_path))
    assert info.warnings == () and "3969 networks" in info.description
    info = check(_exp(tmp_path, target={"resolution": 64}))
    assert len(info.warnings) == 1 and "differ from the target model's analytic count" in info.warnings[0]


def test_a_seeded_table_search_tells_the_controller_the_tables_noise(tmp_path, macro, monkeypatch):
    """``sample: seed``: a told accuracy is one of three recorded trainings; its spread around the network's mean
    (0.173 points on NAS-Bench-Macro) reaches the controller as its noise hint; ``mean`` is exact (0)."""
    import nas.search.stages as stages
    from nas.search import results

    per_network = [np.var(r.accuracies) for _, r in macro.networks()]
    assert macro.training_noise() == pytest.approx(float(np.sqrt(np.mean(per_network))))
    assert macro.training_noise() == pytest.approx(0.0017343, abs=1e-7)
    seen, real = [], stages.build_controller
    monkeypatch.setattr(stages, "build_controller", lambda exp, noise=None: seen.append(noise) or real(exp, noise))
    for sample in ("seed", "mean"):
        exp = _exp(tmp_path / sample, evaluator={"sample": sample}, controller={"name": "bayes"},
                   budget={"samples": 12})
        summary = stages.run_search_stage(exp, info=check(exp))
        assert summary["trials"] == 12 and len(results.read_trials(exp.run_dir)) == 12
    assert seen == [macro.training_noise(), 0.0]
    assert check(_exp(tmp_path)).noise == macro.training_noise()  # the meaningless-scores check uses the same
