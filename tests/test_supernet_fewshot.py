"""Few-shot supernets (``supernet.few_shot``, issue 21): splitting, routing, prefix scoring, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from efficientnet.fewshot import SplitSupernet
from efficientnet.supernet import Supernet
from nas.config import ConfigError
from nas.data import DataConfig, load_data
from nas.experiment.proxy import ProxyConfig
from nas.supernet import PathScorer, SupernetScorer, load_supernet, load_supernet_experiment, train_supernet
from nas.supernet.checkpoint import save_checkpoint
from nas.supernet.prefix import score_paths
from nas.supernet.train import _meta, _SupernetRun
from search_spaces import get_space


def _cfg(tmp_path: Path, name: str = "sn", **supernet) -> dict:
    return {"space": "nas-bench-macro", "data": {"kind": "builtin", "holdout": 32, "train_limit": 64},
            "proxy": {"resolution": 16, "width": 0.25, "device": "cpu"},
            "supernet": {"epochs": 3, "batch_size": 32, "calib_batches": 1, "calib_batch_size": 32, "few_shot": 1,
                         **supernet},
            "output": {"dir": str(tmp_path), "name": name}}


@pytest.mark.parametrize("override, match", [
    ("supernet.few_shot=3", r"supernet.few_shot must be in \[0, epochs\) \(3\)"),
    ("supernet.few_shot=-1", r"supernet.few_shot must be in \[0, epochs\)"),
    ("supernet.few_shot_decision=8", "supernet.few_shot_decision: 8 is not a decision of space 'nas-bench-macro'"),
])
def test_few_shot_fields_are_checked(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        load_supernet_experiment(data=_cfg(tmp_path), overrides=[override])


def _net(seed: int = 0) -> Supernet:
    torch.manual_seed(seed)
    net = Supernet(get_space("nas-bench-macro"), width=0.25, resolution=16, num_classes=10)
    with torch.no_grad():  # informative logits: a random classifier scaled up
        net.classifier.weight.mul_(50.0)
    return net.eval()


def _perturbed_split(net: Supernet) -> SplitSupernet:
    split = SplitSupernet.split(net, 0)
    with torch.no_grad():  # each sub-supernet drifts its own way, as after training
        for k, part in enumerate(split.parts):
            g = torch.Generator().manual_seed(k)
            for p in part.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    return split.eval()


def test_split_starts_equal_and_routes_by_the_first_decision():
    net = _net()
    space = net.space
    split = SplitSupernet.split(net, 0)
    assert len(split.parts) == space.decision_sizes[0] == 3
    x = torch.randn(2, 3, 16, 16)
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(12)]
    with torch.no_grad():
        for g in genotypes:
            assert split.route(g) == space.encode(g)[0]
            torch.testing.assert_close(split(x, g), net(x, g), rtol=0, atol=0)
        with torch.no_grad():
            for p in split.parts[1].parameters():
                p.add_(0.5)
        for g in genotypes:  # only the paths of sub-supernet 1 see its change
            changed = not torch.equal(split(x, g), net(x, g))
            assert changed == (space.encode(g)[0] == 1)


def test_prefix_scoring_of_a_split_supernet_equals_one_path_at_a_time():
    split = _perturbed_split(_net())
    data = load_data(DataConfig(kind="builtin", holdout=96, train_limit=128))
    scorer = PathScorer(split, data, ProxyConfig(device="cpu", resolution=16, eval_batch_size=40), 2, 32, 0,
                        torch.device("cpu"))
    rng = np.random.default_rng(1)
    genotypes = list({split.space.sample(rng) for _ in range(24)})
    assert {split.route(g) for g in genotypes} == {0, 1, 2}
    alone = np.array([scorer(g)[0] for g in genotypes])
    assert len(set(alone.tolist())) > 3
    np.testing.assert_array_equal(score_paths(scorer, genotypes), alone)


def test_split_checkpoint_round_trip(tmp_path):
    exp = load_supernet_experiment(data=_cfg(tmp_path))
    split = _perturbed_split(_net())
    path = tmp_path / "split.pt"
    save_checkpoint(path, split, None, _meta(exp, split, 2, [], 1))
    loaded, meta = load_supernet(path)
    assert isinstance(loaded, SplitSupernet) and meta["split"] == {"decision": 0, "parts": 3}
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        for g in (split.largest(), split.smallest(), split.space.sample(np.random.default_rng(3))):
            torch.testing.assert_close(loaded(x, g), split(x, g), rtol=0, atol=0)


def test_after_the_split_each_step_trains_one_sub_supernet(tmp_path):
    exp = load_supernet_experiment(data=_cfg(tmp_path, shrink_phases=1))
    run = _SupernetRun(exp, False, 0, 1, torch.device("cpu"))
    run.epoch(1)
    momentum = {id(p): run.optimizer.state[p]["momentum_buffer"].clone() for p in run.net.parameters()
                if "momentum_buffer" in run.optimizer.state.get(p, {})}
    one_shot = [p for p in run.net.parameters()]
    run._split()
    assert isinstance(run.net, SplitSupernet) and run.scorer.net is run.net
    for part in run.net.parts:  # the optimizer state continues in every sub-supernet
        for old, new in zip(one_shot, part.parameters()):
            if id(old) in momentum:
                torch.testing.assert_close(run.optimizer.state[new]["momentum_buffer"], momentum[id(old)])
    rng = np.random.default_rng(0)
    for step in range(6):
        paths = run._paths(step, rng, 0.0)
        assert len(paths) == exp.supernet.paths_per_step
        assert {run.net.route(g) for g in paths} == {step % 3}
    assert run._paths(0, rng, 0.0)[0] == run.extremes[0][0]  # the sub-supernet's own largest path first


@pytest.mark.training
def test_few_shot_run_resumes_exactly_and_scores(tmp_path):
    torch.set_num_threads(1)
    full = load_supernet_experiment(data=_cfg(tmp_path, name="full", shrink_phases=1))
    summary = train_supernet(full)
    assert summary.epochs == 3 and all(np.isfinite(h["loss"]) for h in summary.history)
    want, meta = load_supernet(full.checkpoint_path)
    assert isinstance(want, SplitSupernet) and meta["split"]["decision"] == 0
    for stop in (1, 2):  # interrupted before the split (it happens on resume) and after it
        exp = load_supernet_experiment(data=_cfg(tmp_path, name=f"stop{stop}", shrink_phases=1))
        run = _SupernetRun(exp, False, 0, 1, torch.device("cpu"))
        for epoch in range(1, stop + 1):
            run.history.append(run.epoch(epoch))
        save_checkpoint(exp.checkpoint_path, run.net, run.optimizer, _meta(exp, run.net, stop, run.history, 1))
        train_supernet(exp, resume=True)
        got, _ = load_supernet(exp.checkpoint_path)
        for name, tensor in want.state_dict().items():
            torch.testing.assert_close(got.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    scorer = SupernetScorer.from_checkpoint(full.checkpoint_path, device="cpu")
    genotypes = [want.largest(), want.smallest(), want.space.sample(np.random.default_rng(5))]
    together = scorer.score_many(genotypes)
    alone = [scorer.score(g) for g in genotypes]
    assert all(s.ok for s in together) and [s.accuracy for s in together] == [s.accuracy for s in alone]
