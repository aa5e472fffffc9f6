"""Verification against a converged table: the truth rule, the report's numbers and verdict, a CLI run (no Ray)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from nas.cli import main
from nas.config import ConfigError
from nas.experiment.search import load_experiment
from nas.search.truth import truth_table, verdict

MACRO = {"space": "nas-bench-macro", "controller": {"name": "evolution", "seed": 0},
         "objective": {"cost": "macs", "target": 3.0e7, "w": -0.07}, "target": {"resolution": 32, "num_classes": 10},
         "evaluator": {"kind": "table", "table": "nas-bench-macro", "batch": 16}, "baseline": "random",
         "budget": {"samples": 60}}


def _cfg(tmp_path, **sections):
    cfg = {**MACRO, "output": {"dir": str(tmp_path / "runs"), "name": "t"}}
    cfg.update(sections)
    return cfg


def test_the_truth_rule(tmp_path):
    exp = load_experiment(data=_cfg(tmp_path))
    assert truth_table(exp) == "nas-bench-macro"
    supernet = load_experiment(data=_cfg(tmp_path, evaluator={"kind": "supernet", "checkpoint": "x.pt"}))
    assert truth_table(supernet) == "nas-bench-macro"  # the space ships a table
    assert truth_table(load_experiment(data=_cfg(tmp_path, verify={"truth": "training"}))) is None
    tiny = load_experiment(data=_cfg(tmp_path, space="tiny", evaluator={"kind": "proxy"}))
    assert truth_table(tiny) is None
    with pytest.raises(ConfigError, match="verify.truth: table"):
        truth_table(load_experiment(data=_cfg(tmp_path, space="tiny", evaluator={"kind": "proxy"},
                                              verify={"truth": "table"})))


def _arm(reward, rank):
    return {"returned": {"true_reward": reward, "rank": rank, "regret": 0.9 - reward}}


@pytest.mark.parametrize("search, baseline, beat", [(0.89, 0.88, True), (0.87, 0.88, False), (0.88, 0.88, False)])
def test_the_verdict_says_plainly_whether_the_search_beat_random(search, baseline, beat):
    text = verdict({"networks": 100, "search": _arm(search, 3), "baseline": _arm(baseline, 5)})
    if beat:
        assert text.startswith("the search beat the equal-budget random baseline on the converged truth")
    else:
        assert text.startswith("the search did NOT beat the equal-budget random baseline on the converged truth")


def test_a_table_search_end_to_end_through_the_cli(tmp_path, capsys):
    from nas.cost.objective import ObjectiveConfig, reward
    from nas.data.tables import load_table
    from nas.evaluators.outcome import Scoring
    from nas.cost.target import TargetModel
    from nas.search import results
    from nas.search.report import summarize

    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(_cfg(tmp_path)))
    assert main(["search", str(path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "t"
    assert "verified against the converged truth: table nas-bench-macro" in out
    assert "the search" in out and "the equal-budget random baseline on the converged truth" in out
    assert not ("ray" in sys.modules and sys.modules["ray"].is_initialized())
    assert len(results.read_trials(run)) == 60 and len(results.read_trials(run / "baseline")) == 60

    t = summarize(run)["truth"]
    table = load_table("nas-bench-macro")
    scoring, objective = Scoring(ObjectiveConfig(**MACRO["objective"]), TargetModel(32, 10)), \
        ObjectiveConfig(**MACRO["objective"])
    truths = np.array([reward(r.mean, scoring.counts(g.to_string(), g)["cost"], objective)
                       for g, r in table.networks()])
    for arm in ("search", "baseline"):
        returned = t[arm]["returned"]
        assert returned["rank"] == 1 + np.count_nonzero(truths > returned["true_reward"])
        assert returned["regret"] == pytest.approx(truths.max() - returned["true_reward"])
        assert len(t[arm]["curve_found"]) == 60 and t[arm]["curve_found"][-1] == t[arm]["found"]["true_reward"]
    assert set(t["fidelity"]["rows"]) == {"search score", "params alone", "MACs alone"}
    assert t["fidelity"]["rows"]["search score"]["accuracy"][0] > 0.5  # one recorded run against the mean

    report = (run / "report.md").read_text()
    assert "## Verification against the converged truth" in report and "| MACs alone |" in report
    assert (run / "truth_so_far.png").is_file() and "standalone proxy training" not in report
    assert main(["results", str(run)]) == 0
    assert verdict(t) in capsys.readouterr().out
