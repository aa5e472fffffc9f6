"""The controller's recommendation is recorded in best.yaml next to the best row (issue 20)."""

from __future__ import annotations

import yaml

from nas.search import results
from search_spaces import resolve_genotype


def _row(trial_id, genotype, reward):
    return {"trial_id": trial_id, "status": "ok", "genotype": genotype, "reward": reward, "accuracy": reward,
            "macs": 1e6, "params": 1e5}


def test_summary_records_the_recommended_row(tmp_path):
    b0 = resolve_genotype("b0").to_string()
    a1 = resolve_genotype("mnasnet-a1").to_string()
    results.append_trials(tmp_path, [_row("c00000", b0, 0.9), _row("c00001", a1, 0.8)])
    summary = results.write_summary(tmp_path, a1)
    assert summary["best"]["trial_id"] == "c00000" and summary["recommended"]["trial_id"] == "c00001"
    doc = yaml.safe_load((tmp_path / results.BEST).read_text())
    assert doc["trial_id"] == "c00000" and doc["recommended"]["trial_id"] == "c00001"
    assert doc["recommended"]["genotype"] == a1
    none = results.write_summary(tmp_path, None)
    assert none["recommended"] is None and "recommended" not in yaml.safe_load((tmp_path / results.BEST).read_text())


def test_the_recommendation_is_read_back(tmp_path):
    assert results.read_recommended(tmp_path) is None  # no best.yaml yet
    b0 = resolve_genotype("b0").to_string()
    results.append_trials(tmp_path, [_row("c00000", b0, 0.9)])
    results.write_summary(tmp_path, b0)
    assert results.read_recommended(tmp_path)["trial_id"] == "c00000"
