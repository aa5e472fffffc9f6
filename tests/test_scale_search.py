"""EfficientNet step 1: the grid config (strict, checked before Ray), the table and choice, the Ray run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from efficientnet import count_spec
from efficientnet.compound import CompoundCoefficients, round_resolution
from nas.search import results
from nas.cli import main
from nas.config import ConfigError
from nas.experiment.search import scaled_experiment
from nas.search.scale_grid import (CANDIDATES_CSV, CHOICE_YAML, GRID_FILE, ScaleGridConfig, candidate_target,
                                   load_scale_search, run_scale_search, split_config, summarize)
from search_helpers import small
from search_spaces import named_genotype

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
#: 3 candidates: (1.0, 1.1, 1.3) = 2.04, (1.2, 1.0, 1.3) = 2.03, (1.2, 1.1, 1.15) = 1.92.
GRID = {"genotype": "b0", "alphas": [1.0, 1.2], "betas": [1.0, 1.1], "gammas": [1.0, 1.15, 1.3],
        "tolerance": 0.1}


def grid_cfg(tmp_path, **grid):
    cfg = small(tmp_path)
    cfg["grid"] = dict(GRID, **grid)
    return cfg


# --- config ------------------------------------------------------------------------------------------

def test_grid_section_loads_lists_and_ranges(tmp_path):
    grid, exp = load_scale_search(data=grid_cfg(tmp_path, betas={"low": 1.0, "high": 1.1, "step": 0.05}))
    assert grid.alphas == (1.0, 1.2) and grid.betas == (1.0, 1.05, 1.1) and grid.gammas == (1.0, 1.15, 1.3)
    triples = grid.triples()
    assert {(t.alpha, t.beta, t.gamma) for t in triples} >= {(1.0, 1.1, 1.3), (1.2, 1.0, 1.3), (1.2, 1.1, 1.15)}
    assert all(abs(t.flops_factor - 2.0) <= 0.1 + 1e-12 for t in triples)
    assert exp.space == "tiny" and grid.metric == "accuracy" and grid.max_phi == 7


def test_overrides_reach_the_grid_section(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(grid_cfg(tmp_path)))
    grid, exp = load_scale_search(path, ["grid.tolerance=0.05", "grid.metric=reward", "budget.samples=3"])
    assert grid.tolerance == 0.05 and grid.metric == "reward" and exp.budget.samples == 3
    assert [(t.alpha, t.beta, t.gamma) for t in grid.triples()] == [(1.0, 1.1, 1.3), (1.2, 1.0, 1.3)]


@pytest.mark.parametrize("grid, needle", [
    ({"alhpas": [1.0]}, "grid.alhpas: unknown key"),
    ({"alphas": {"low": 1.0, "hgh": 1.2}}, "grid.alphas.hgh: unknown key"),
    ({"alphas": {"low": 1.3, "high": 1.0}}, "grid.alphas: grid low <= high must hold"),
    ({"alphas": [0.9, 1.2]}, "grid.alphas: every value must be a finite number >= 1"),
    ({"betas": []}, "grid.betas: empty"),
    ({"gammas": "1.15"}, "grid.gammas: expected"),
    ({"tolerance": 0.01}, "within 0.01 of 2.0; closest is"),
    ({"tolerance": -1}, "grid.tolerance: must be a finite number >= 0"),
    ({"metric": "loss"}, "grid.metric: 'loss' is not allowed"),
    ({"max_phi": 40}, "grid.max_phi: must be in [0, 20]"),
    ({"genotype": "b9"}, "grid.genotype:"),
    ({"genotype": "/no/such/run"}, "grid.genotype: no such run directory"),
])
def test_grid_mistakes_name_the_field(tmp_path, grid, needle):
    with pytest.raises(ConfigError) as err:
        load_scale_search(data=grid_cfg(tmp_path, **grid))
    assert needle in str(err.value), str(err.value)


def test_empty_grid_names_the_grid_and_tolerance(tmp_path):
    with pytest.raises(ValueError) as err:
        load_scale_search(data=grid_cfg(tmp_path, alphas=[1.0], betas=[1.0], gammas=[1.0], tolerance=0.2))
    text = str(err.value)
    assert "tolerance 0.2" in text and "alphas [1.0]" in text and "widen the grid" in text


def test_missing_grid_section_and_experiment_mistakes(tmp_path):
    with pytest.raises(ConfigError, match="grid: required section missing"):
        split_config(small(tmp_path))
    cfg = grid_cfg(tmp_path)
    cfg["budget"]["samples"] = "many"
    with pytest.raises(ConfigError, match="budget.samples: expected an integer"):
        load_scale_search(data=cfg)


def test_candidate_the_proxy_cannot_take_is_rejected(tmp_path):
    cfg = grid_cfg(tmp_path, alphas=[1.0, 2.0], betas=[1.0], gammas=[1.0], tolerance=0.01)
    cfg["proxy"]["depth"] = 5.0  # 5 * 2 > the proxy's depth limit of 8
    with pytest.raises(ConfigError, match=r"candidate \{'alpha': 2.0.*proxy.depth"):
        load_scale_search(data=cfg)


@pytest.mark.parametrize("grid, needle", [
    ({"alhpas": [1.0]}, "grid.alhpas: unknown key"),
    ({"tolerance": 0.001}, "tolerance 0.001"),
])
def test_cli_mistakes_exit_2_with_one_line(tmp_path, capsys, grid, needle):
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(grid_cfg(tmp_path, **grid)))
    code = main(["scale-search", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("nas: error: ") and needle in err, err
    assert not (tmp_path / "runs").exists()  # stopped before anything was written or started


def test_shipped_grid_experiments():
    quick = EXPERIMENTS / "scale_grid.yaml"
    paper = EXPERIMENTS / "scale_grid_paper.yaml"
    for path in (quick, paper):
        text = path.read_text()
        assert text.startswith("#") and "How to run" in text and "Cost" in text, path
    grid, exp = load_scale_search(quick)
    assert 3 <= len(grid.triples()) <= 5 and exp.data.kind == "builtin"
    raw = yaml.safe_load(paper.read_text())
    raw["data"] = {"kind": "builtin"}  # the ImageNet path exists on the cluster only
    paper_grid, paper_exp = split_config(raw)
    triples = paper_grid.triples()
    assert CompoundCoefficients(1.2, 1.1, 1.15) in triples and len(triples) >= 40
    assert "ray start" in paper.read_text() and "--address auto" in paper.read_text()
    # the ImageNet images are decoded large enough for the largest candidate resolution
    largest = max(round_resolution(paper_exp.proxy.resolution * t.gamma) for t in triples)
    assert yaml.safe_load(paper.read_text())["data"]["image_size"] >= largest


# --- table and choice (no Ray) ----------------------------------------------------------------------

def _fake_rows(grid: ScaleGridConfig, exp, accuracies: dict, failed=()):
    rows = []
    for i, t in enumerate(grid.triples()):
        key = (t.alpha, t.beta, t.gamma)
        if key not in accuracies and key not in failed:
            continue
        params, macs = candidate_target(exp.target, t).counts(named_genotype("b0"))
        status = "failed" if key in failed else "ok"
        rows.append({"trial_id": f"t{i}", "index": i, "status": status, **t.as_dict(),
                     "accuracy": accuracies.get(key, 0.0), "reward": accuracies.get(key, 0.0),
                     "macs": macs if status == "ok" else 0, "params": params if status == "ok" else 0})
    return rows


def test_summary_table_choice_and_family(tmp_path):
    grid, exp = load_scale_search(data=grid_cfg(tmp_path))
    run_dir = exp.run_dir
    run_dir.mkdir(parents=True)
    rows = _fake_rows(grid, exp, {(1.0, 1.1, 1.3): 0.4, (1.2, 1.0, 1.3): 0.6}, failed=[(1.2, 1.1, 1.15)])
    for row in rows:
        results.append_trial(run_dir, row)
    out = summarize(grid, exp, named_genotype("b0"), grid.triples(), run_dir)
    assert (out.choice["alpha"], out.choice["beta"], out.choice["gamma"]) == (1.2, 1.0, 1.3)
    assert out.failed == 1 and out.trials == 3
    with open(run_dir / CANDIDATES_CSV, newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["alpha", "beta", "gamma", "factor", "accuracy", "reward", "macs", "params",
                              "macs_ratio", "status", "trial_id"]
    assert [r["status"] for r in table] == ["ok", "ok", "failed"]
    failed = table[2]
    assert failed["accuracy"] == "" and int(failed["macs"]) > 0  # counted analytically for the failed one
    base_macs = exp.target.counts(named_genotype("b0"))[1]
    # the real growth, rounding of repeats and feature maps included, is not the nominal factor
    assert all(float(r["macs_ratio"]) == round(int(r["macs"]) / base_macs, 4) > 1.5 for r in table)
    doc = yaml.safe_load((run_dir / CHOICE_YAML).read_text())
    assert doc["chosen"]["alpha"] == 1.2 and doc["chosen"]["accuracy"] == 0.6
    assert [m["name"] for m in doc["family"]] == [f"b{i}" for i in range(8)]
    b0, b1 = doc["family"][0], doc["family"][1]
    assert (b0["width"], b0["depth"], b0["resolution"]) == (1.0, 1.0, 32)  # target.resolution of the test
    assert (b1["width"], b1["depth"], b1["resolution"]) == (1.0, 1.2, round_resolution(32 * 1.3))
    assert b0["params"] == exp.target.counts(named_genotype("b0"))[0]
    assert all(a["macs"] < b["macs"] for a, b in zip(doc["family"], doc["family"][1:]))


def test_summary_when_every_candidate_failed(tmp_path):
    grid, exp = load_scale_search(data=grid_cfg(tmp_path, metric="reward"))
    exp.run_dir.mkdir(parents=True)
    out = summarize(grid, exp, named_genotype("b0"), grid.triples(), exp.run_dir)
    assert out.choice is None and out.family == []
    assert {c["status"] for c in out.candidates} == {"missing"}
    assert yaml.safe_load((exp.run_dir / CHOICE_YAML).read_text())["chosen"] is None


def test_resume_checks_the_saved_grid_before_ray(tmp_path):
    grid, exp = load_scale_search(data=grid_cfg(tmp_path))
    exp.run_dir.mkdir(parents=True)
    (exp.run_dir / GRID_FILE).write_text(yaml.safe_dump({**GRID, "gammas": [1.0, 1.15]}))
    with pytest.raises(ConfigError, match="differs from the grid"):
        run_scale_search(grid, exp, resume=True)
    results.append_trial(exp.run_dir, {"trial_id": "x", "status": "ok"})
    with pytest.raises(ConfigError, match="already holds a search; pass --resume"):
        run_scale_search(grid, exp)


# --- through Ray ------------------------------------------------------------------------------------

@pytest.mark.ray
def test_grid_search_on_builtin_data(tmp_path, local_ray):
    cfg = grid_cfg(tmp_path, tolerance=0.05)  # 2 candidates: one round of 2 trials on 2 CPUs
    cfg["proxy"]["depth"] = 0.5  # B0 with one block a stage: seconds a trial
    cfg["data"].update(train_limit=128, holdout=64)
    grid, exp = load_scale_search(data=cfg)
    lines = []
    out = run_scale_search(grid, exp, progress=lines.append)
    assert len(out.candidates) == 2 and out.trials == 2 and out.failed == 0
    assert all(c["status"] == "ok" and 0 <= c["accuracy"] <= 1 for c in out.candidates), out.candidates
    chosen = CompoundCoefficients(out.choice["alpha"], out.choice["beta"], out.choice["gamma"])
    assert abs(chosen.flops_factor - 2.0) <= grid.tolerance and chosen in grid.triples()
    assert out.choice["accuracy"] == max(c["accuracy"] for c in out.candidates)
    trial_lines = [line for line in lines if " | c0" in line]  # one line per trial (heartbeats aside)
    assert len(trial_lines) == 2 and all("alpha=" in line and "ETA" in line for line in trial_lines)
    # each trial trained the scaled proxy and costed the scaled target, as the table says
    genotype = named_genotype("b0")
    for row in results.read_trials(out.run_dir):
        t = CompoundCoefficients(row["alpha"], row["beta"], row["gamma"])
        proxy = scaled_experiment(exp, t).proxy
        assert (proxy.depth, proxy.width) == (exp.proxy.depth * t.alpha, exp.proxy.width * t.beta)
        assert proxy.resolution == round_resolution(exp.proxy.resolution * t.gamma)
        assert row["proxy_macs"] == count_spec(proxy.spec(genotype, 10))[1]
        assert (row["params"], row["macs"]) == candidate_target(exp.target, t).counts(genotype)
    table = (out.run_dir / CANDIDATES_CSV).read_text().splitlines()
    assert table[0].startswith("alpha,beta,gamma,factor,accuracy") and len(table) == 3
    doc = yaml.safe_load((out.run_dir / CHOICE_YAML).read_text())
    assert doc["chosen"]["alpha"] == chosen.alpha and len(doc["family"]) == 8
    # resuming the finished run trains nothing again and gives the same answer
    again = run_scale_search(*load_scale_search(out.run_dir), resume=True)
    assert again.choice == out.choice and again.trials == 2
