"""The verdict of a verified comparison, the evaluator/baseline/verify config, and the built-in 'small' data (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from nas.cli import main
from nas.search.verify import compare, comparison_lines, top_genotypes


def _entry(role: str, seeds: dict[int, float], search_reward: float | None = 0.3) -> dict:
    import statistics

    values = list(seeds.values())
    arm = role.split(" ")[0]
    return {"genotype": role, "roles": [role], "search_reward": {arm: search_reward} if search_reward else {},
            "seeds": seeds, "accuracy": seeds, "failed": 0, "macs": 1e6,
            "reward": {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
                       "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)},
            "verified_accuracy": None}


def test_a_gain_is_claimed_only_when_the_search_wins_on_every_seed():
    base = _entry("baseline #1", {0: 0.40, 1: 0.42, 2: 0.41})
    overlapping = compare([_entry("search #1", {0: 0.43, 1: 0.405, 2: 0.44}), base])
    assert overlapping["gain"] == pytest.approx((0.43 + 0.405 + 0.44) / 3 - 0.41)
    assert overlapping["gain"] > 0 and not overlapping["verified_gain"]  # a higher mean is not enough
    text = "\n".join(comparison_lines(overlapping))
    assert "no verified gain shown" in text and "verified gain:" not in text
    clear = compare([_entry("search #1", {0: 0.45, 1: 0.46, 2: 0.47}), base])
    assert clear["verified_gain"] and "verified gain: +0.0500" in "\n".join(comparison_lines(clear))
    worse = compare([_entry("search #1", {0: 0.30, 1: 0.31}), base])
    assert not worse["verified_gain"] and worse["gain"] < 0


def test_the_best_verified_genotype_is_chosen_the_same_way_in_both_arms():
    table = [_entry("search #1", {0: 0.40, 1: 0.40}), _entry("search #2", {0: 0.50, 1: 0.52}),
             _entry("baseline #1", {0: 0.45, 1: 0.47}), _entry("baseline #2", {0: 0.30, 1: 0.31}),
             dict(_entry("reference", {0: 0.2, 1: 0.2}, None), name="b0")]
    c = compare(table)
    assert c["search"]["genotype"] == "search #2" and c["baseline"]["genotype"] == "baseline #1"
    assert c["reference"]["name"] == "b0" and c["verified_gain"]
    assert any(line.startswith("reference b0") for line in comparison_lines(c))


def test_top_genotypes_are_distinct_and_ordered_by_search_reward():
    rows = [{"trial_id": str(i), "index": i, "status": s, "genotype": g, "reward": r}
            for i, (s, g, r) in enumerate([("ok", "a", 0.2), ("ok", "b", 0.5), ("ok", "a", 0.6), ("failed", "c", 0.0),
                                           ("ok", "d", 0.1)])]
    assert [r["genotype"] for r in top_genotypes(rows, 3)] == ["a", "b", "d"]


@pytest.mark.parametrize("override, needle", [
    ("evaluator.kind=supernet", "evaluator.checkpoint: required with evaluator.kind 'supernet'"),
    ("evaluator.checkpoint=/nonexistent.pt", "evaluator.checkpoint: only used with evaluator.kind 'supernet'"),
    ("evaluator.workers=-1", "evaluator.workers must be an integer >= 0 (0: in the driver process), got -1"),
    ("evaluator.batch=0", "evaluator.batch must be an integer >= 1, got 0"),
    ("evaluator.device=gpu", "evaluator.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ("baseline=grid", "baseline: 'grid' is not allowed"),
    ("verify.seeds=[]", "verify.seeds must be at least one seed, got []"),
    ("verify.seeds=[1,1]", "verify.seeds must be distinct integers >= 0, got [1, 1]"),
    ("verify.reference=b9", "verify.reference:"),
    ("verify.top_k=-1", "verify.top_k must be an integer >= 0 (0 skips verification), got -1"),
])
def test_config_mistakes_are_one_line_exit_2(tmp_path, capsys, override, needle):
    config = "experiments/proxy_search.yaml"
    assert main(["search", config, "--set", override, "--set", f"output.dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_supernet_of_another_space_or_data_is_refused(tmp_path, capsys):
    import torch

    from efficientnet.supernet import Supernet
    from nas.supernet.checkpoint import save_checkpoint
    from search_spaces import get_space

    arch = dict(width=0.25, depth=0.5, resolution=16, stem_stride=2, num_classes=10)
    meta = {"space": "tiny", "arch": arch, "data": {"kind": "builtin", "holdout": 100}, "proxy": {}, "supernet": {},
            "epoch": 1, "epochs": 1, "history": []}
    path = tmp_path / "supernet.pt"
    save_checkpoint(path, Supernet(get_space("tiny"), **arch), None, meta)
    base = ["search", "experiments/proxy_search.yaml", "--set", "evaluator.kind=supernet", "--set",
            f"evaluator.checkpoint={path}", "--set", f"output.dir={tmp_path}"]
    assert main(base) == 2
    assert "the supernet is of space 'tiny', the experiment searches 'mnasnet'" in capsys.readouterr().err
    assert main(base + ["--set", "space=tiny"]) == 2
    assert "data: the supernet was trained on" in capsys.readouterr().err


def test_builtin_small_data_is_real_cifar10_stored_compactly():
    from nas.data import BUILTINS, DataConfig, load_data

    path = BUILTINS["small"]
    assert path.stat().st_size <= 10 * 2 ** 20
    with np.load(path, allow_pickle=False) as npz:  # no object arrays
        assert all(npz[k].dtype != object for k in npz.files)
    data = load_data(DataConfig(builtin="small", holdout=1000))
    assert (len(data.y_train), len(data.y_holdout), len(data.y_test)) == (9000, 1000, 2000)
    assert data.x_train.shape[1:] == (32, 32, 3) and data.x_train.dtype == np.uint8
    assert np.bincount(data.y_holdout).tolist() == [100] * 10  # stratified: 0.1% accuracy steps
    assert 0.3 < data.x_train.mean() / 255 < 0.6 and data.x_test.std() > 30  # real images, not blank
    with pytest.raises(ValueError, match="data.builtin must be one of tiny, small"):
        DataConfig(builtin="large")
