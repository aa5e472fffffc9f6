"""Supernet recipe settings (issue 21): progressive shrinking, training resolution, prefix-shared scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from efficientnet.supernet import Supernet
from nas.config import ConfigError
from nas.data import DataConfig, load_data
from nas.experiment.proxy import ProxyConfig
from nas.supernet import PathScorer, load_supernet_experiment, train_supernet
from nas.supernet.prefix import score_paths
from nas.supernet.train import _SupernetRun, shrink_phase
from search_spaces import get_space


def _cfg(tmp_path: Path, **supernet) -> dict:
    return {"space": "nas-bench-macro", "data": {"kind": "builtin", "holdout": 64, "train_limit": 128},
            "proxy": {"resolution": 16, "width": 0.25, "device": "cpu"},
            "supernet": {"epochs": 2, "batch_size": 64, "calib_batches": 1, "calib_batch_size": 32, **supernet},
            "output": {"dir": str(tmp_path), "name": "sn"}}


@pytest.mark.parametrize("override, match", [
    ("supernet.shrink_phases=0", "supernet.shrink_phases must be >= 1"),
    ("supernet.shrink_phases=3", r"supernet.shrink_phases must be <= epochs \(2\)"),
    ("supernet.train_resolution=4", "supernet.train_resolution must be >= 8 or null"),
])
def test_recipe_fields_are_checked(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        load_supernet_experiment(data=_cfg(tmp_path), overrides=[override])


def test_shrink_phases_widen_to_uniform():
    assert [shrink_phase(e, 6, 3) for e in range(1, 7)] == [2 / 3, 2 / 3, 1 / 3, 1 / 3, 0.0, 0.0]
    assert [shrink_phase(e, 5, 1) for e in range(1, 6)] == [0.0] * 5
    assert shrink_phase(7, 7, 2) == 0.0 and shrink_phase(1, 7, 2) == 0.5


def test_shrinking_samples_near_the_largest_path_first(tmp_path):
    exp = load_supernet_experiment(data=_cfg(tmp_path, epochs=3, shrink_phases=3))
    run = _SupernetRun(exp, False, 0, 1, torch.device("cpu"))
    rng = np.random.default_rng(0)

    def kept(phase):  # share of decisions equal to the largest path's
        codes = np.array([run.space.encode(run._sample(rng, phase)) for _ in range(300)])
        return float(np.mean(codes == run.big_code))

    early, late = kept(2 / 3), kept(0.0)
    assert early == pytest.approx(2 / 3 + 1 / 9, abs=0.05)  # kept, or drawn uniformly onto it (1 of 3 options)
    assert late == pytest.approx(1 / 3, abs=0.05)


def test_train_resolution_trains_small_and_scores_at_proxy_resolution(tmp_path):
    exp = load_supernet_experiment(data=_cfg(tmp_path, train_resolution=8))
    run = _SupernetRun(exp, False, 0, 1, torch.device("cpu"))
    assert run.batcher.resolution == 8 and run.scorer.batcher.resolution == 16
    assert run.scorer.calib[0].shape[-1] == 16


def test_prefix_scoring_equals_one_path_at_a_time():
    torch.manual_seed(0)
    space = get_space("nas-bench-macro")
    data = load_data(DataConfig(kind="builtin", holdout=96, train_limit=128))
    net = Supernet(space, width=0.25, resolution=16, num_classes=10)
    with torch.no_grad():  # informative logits: a random classifier scaled up
        net.classifier.weight.mul_(50.0)
    scorer = PathScorer(net, data, ProxyConfig(device="cpu", resolution=16, eval_batch_size=40), 2, 32, 0,
                        torch.device("cpu"))
    rng = np.random.default_rng(1)
    genotypes = list({space.sample(rng) for _ in range(24)})
    alone = np.array([scorer(g)[0] for g in genotypes])
    together = score_paths(scorer, genotypes)
    assert len(set(alone.tolist())) > 3  # the paths differ, so equality is a real check
    np.testing.assert_array_equal(together, alone)


@pytest.mark.training
def test_shrinking_small_resolution_run_trains(tmp_path):
    torch.set_num_threads(1)
    exp = load_supernet_experiment(data=_cfg(tmp_path, shrink_phases=2, train_resolution=8, sandwich=False,
                                             distill=False, random_paths=1, separate=["expand", "kernel"]))
    summary = train_supernet(exp)
    assert summary.epochs == 2 and all(np.isfinite(h["loss"]) for h in summary.history)
