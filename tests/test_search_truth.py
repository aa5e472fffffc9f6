"""Verification against a converged table: the truth rule, the report's numbers and verdict, a CLI run (no Ray)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

from nas.cli import main
from nas.config import ConfigError
from nas.experiment.search import load_experiment
from nas.search.truth import picks, truth_table, verdict

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


# genotypes of distinct networks of nas-bench-macro (op codes per layer; 0 = identity in layers that allow it)
_NETS = ["1-1-1-1-1-1-1-1", "2-2-2-2-2-2-2-2", "1-2-1-2-1-2-1-2", "2-1-2-1-2-1-2-1", "1-1-2-2-1-1-2-2"]


def _rows(scores, truths, genotypes=None):
    genotypes = genotypes or _NETS
    return [{"index": i, "genotype": g, "reward": r, "true_reward": t, "status": "ok"}
            for i, (g, r, t) in enumerate(zip(genotypes, scores, truths))]


def _macro(texts):
    from search_spaces import get_space

    space = get_space("nas-bench-macro")
    return [space.decode([int(c) for c in t.split("-")]).to_string() for t in texts]


def test_the_pick_rules_returned_verified_and_found():
    rows = _rows([0.50, 0.90, 0.80, 0.70, 0.10], [0.6, 0.1, 0.2, 0.5, 0.9], _macro(_NETS))
    p = picks(rows, top_k=3)
    assert p["returned"]["index"] == 1          # best search reward
    assert p["verified"]["index"] == 3          # best truth among the top 3 by score (0.9, 0.8, 0.7)
    assert p["found"]["index"] == 4             # best truth visited
    assert "verified" not in picks(rows, top_k=0)
    assert picks(rows, top_k=5)["verified"]["index"] == 4


def test_the_top_k_counts_networks_not_genotype_strings():
    from search_spaces import get_space, network_key

    space = get_space("nas-bench-macro")
    # two different genotypes of one network (an identity op in another position), then two other networks
    same = [g for g in (space.decode(c) for c in [(1, 1, 1, 0, 1, 1, 1, 1), (1, 1, 1, 1, 0, 1, 1, 1)])]
    assert network_key(same[0]) == network_key(same[1]), "the test needs two genotypes of one network"
    texts = [same[0].to_string(), same[1].to_string()] + _macro(_NETS[:2])
    rows = _rows([0.9, 0.8, 0.7, 0.6], [0.1, 0.1, 0.2, 0.9], texts)
    assert picks(rows, top_k=2)["verified"]["index"] == 2   # the alias does not take a top-2 place
    assert picks(rows, top_k=3)["verified"]["index"] == 3


def _arms(search_verified, baseline_verified, search_returned, baseline_returned):
    def arm(v, r):
        return {"verified": {"true_reward": v, "rank": 10, "regret": 0.9 - v},
                "returned": {"true_reward": r, "rank": 20, "regret": 0.9 - r}}
    return {"networks": 100, "top_k": 3, "search": arm(search_verified, search_returned),
            "baseline": arm(baseline_verified, baseline_returned)}


def test_the_verdict_is_on_the_verified_pick_and_says_how_the_returned_compare():
    won = verdict(_arms(0.89, 0.88, 0.80, 0.85))
    assert won.startswith("the search beat the equal-budget random baseline on the converged truth")
    assert "top 3 by search score" in won and "(the search's is worse)" in won
    lost = verdict(_arms(0.87, 0.88, 0.86, 0.85))
    assert lost.startswith("the search did NOT beat") and "(the search's is better)" in lost
    assert verdict(_arms(0.88, 0.88, 0.85, 0.85)).startswith("the search did NOT beat")  # a tie is not a win


def test_a_table_search_end_to_end_through_the_cli(tmp_path, capsys):
    from nas.cost.objective import ObjectiveConfig, reward
    from nas.data.tables import load_table
    from nas.evaluators.outcome import Scoring
    from nas.cost.target import TargetModel
    from nas.search import results
    from nas.search.report import summarize
    from search_spaces import Genotype

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
        # the verified pick, by brute force: the 3 best distinct networks by search reward, the best of them in truth
        rows = results.ok_rows(results.read_trials(run if arm == "search" else run / "baseline"))
        best_by_net = {}
        for r in rows:
            net = table.lookup(Genotype.from_string(r["genotype"]))
            if id(net) not in best_by_net or r["reward"] > best_by_net[id(net)]["reward"]:
                best_by_net[id(net)] = r
        top3 = sorted(best_by_net.values(), key=lambda r: (-r["reward"], r["index"]))[:3]
        true_of = {r["genotype"]: reward(table.lookup(Genotype.from_string(r["genotype"])).mean, r["cost"], objective)
                   for r in top3}
        assert t[arm]["verified"]["true_reward"] == pytest.approx(max(true_of.values()))
        assert t[arm]["curve_verified"][-1] == pytest.approx(t[arm]["verified"]["true_reward"])
        assert t[arm]["found"]["true_reward"] >= t[arm]["verified"]["true_reward"]
    assert set(t["fidelity"]["rows"]) == {"search score", "params alone", "MACs alone"}
    assert t["fidelity"]["rows"]["search score"]["accuracy"][0] > 0.5  # one recorded run against the mean

    report = (run / "report.md").read_text()
    assert "## Verification against the converged truth" in report and "| MACs alone |" in report
    assert "verified pick (best in truth of its top 3 by search reward)" in report
    assert (run / "truth_so_far.png").is_file() and "standalone proxy training" not in report
    assert (run / "truth_vs_search.png").is_file() and "truth_vs_search.png" in report
    assert not (run / "verified_vs_search.png").exists() and "verified_vs_search.png" not in report  # no empty plots
    assert main(["results", str(run)]) == 0
    assert verdict(t) in capsys.readouterr().out


def test_a_noisy_table_search_reports_the_controllers_recommendation_against_the_truth(tmp_path, capsys):
    """bayes told one recorded training a candidate (``sample: seed``) recommends by its model under the table's
    noise; the truth section shows that network beside the returned one (best told), ranked by the table."""
    from nas.data.tables import load_table
    from nas.search import results
    from nas.search.report import summarize
    from search_spaces import Genotype

    cfg = _cfg(tmp_path, controller={"name": "bayes", "seed": 1046}, budget={"samples": 500}, baseline="none",
               objective={"cost": "macs", "target": 5.76e7, "w": 0.0})
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["search", str(path)]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "t"
    recommended = results.read_recommended(run)
    t = summarize(run)["truth"]["search"]
    assert recommended["genotype"] == t["recommended"]["genotype"] != t["returned"]["genotype"]
    table = load_table("nas-bench-macro")
    means = table.means()
    for which in ("recommended", "returned"):
        mean = table.lookup(Genotype.from_string(t[which]["genotype"])).mean
        assert t[which]["true_accuracy"] == mean and t[which]["rank"] == 1 + np.count_nonzero(means > mean)
    # this seed tells a lucky training of a rank-9 network as the best value; the model's pick ranks 2
    assert (t["returned"]["rank"], t["recommended"]["rank"]) == (9, 2)
    assert "search recommended by the controller (by its model; search reward" in out
    assert "| search | recommended by the controller (by its model) |" in (run / "report.md").read_text()
