"""Supernet training and scoring: strict config, checkpoints, resume after kill -9, evaluator, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from efficientnet.supernet import largest_genotype, smallest_genotype
from nas.cli import main
from nas.config import ConfigError
from nas.supernet import (SupernetScorer, load_supernet, load_supernet_experiment, read_checkpoint,
                          train_supernet)
from search_spaces import BlockGene, Genotype, get_space, named_genotype

ROOT = Path(__file__).resolve().parents[1]


def _cfg(tmp_path: Path, name: str = "sn", **supernet) -> dict:
    """The tiny space on 256 built-in images: about 0.5 s an epoch on one core."""
    return {"space": "tiny", "data": {"kind": "builtin", "holdout": 200, "train_limit": 256},
            "proxy": {"resolution": 32, "stem_stride": 2, "width": 0.25, "depth": 0.5, "device": "cpu"},
            "supernet": {"epochs": 2, "batch_size": 64, "calib_batches": 1, "calib_batch_size": 64, **supernet},
            "output": {"dir": str(tmp_path), "name": name}}


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("override, match", [
    ("supernet.bogus=1", "supernet.bogus: unknown key"),
    ("supernet.distill=true", "supernet.distill must be false when sandwich is off"),
    ("supernet.random_paths=0", "supernet.random_paths must be >= 1 when sandwich is off"),
    ("supernet.calib_batch_size=1", "supernet.calib_batch_size must be >= 2"),
    ("supernet.checkpoint=a/b.pt", "supernet.checkpoint must be a file name"),
    ("supernet.ensemble=0", r"supernet.ensemble must be in \[1, 16\]"),
    ("space=nope", "space: unknown search space 'nope'"),
    ("proxy.drop_connect=0.1", "proxy.drop_connect: the supernet has no stochastic depth"),
    ("supernet.separate=[se]", r"supernet.separate\[0\]: 'se' is not allowed; choose one of 'expand' \| 'kernel'"),
    ("supernet.separate=[kernel,kernel]", "supernet.separate must be a list of distinct fields"),
])
def test_config_is_strict(tmp_path, override, match):
    data = _cfg(tmp_path)
    if "distill" in override or "random_paths" in override:
        data["supernet"]["sandwich"] = False
    with pytest.raises(ConfigError, match=match):
        load_supernet_experiment(data=data, overrides=[override])


def test_shipped_supernet_experiment_loads():
    exp = load_supernet_experiment(ROOT / "experiments" / "supernet_quick.yaml")
    assert (exp.proxy.width, exp.proxy.depth, exp.proxy.resolution, exp.proxy.stem_stride) == (0.25, 0.5, 32, 2)
    assert exp.checkpoint_path.name == "supernet.pt" and exp.run_dir.name == "supernet_quick"


def test_batch_must_split_across_workers(tmp_path):
    with pytest.raises(ConfigError, match="supernet.batch_size must be divisible by workers"):
        load_supernet_experiment(data=_cfg(tmp_path, workers=3))


@pytest.mark.training
def test_train_checkpoint_score_and_cli(tmp_path, one_thread, capsys):
    exp = load_supernet_experiment(data=_cfg(tmp_path))
    summary = train_supernet(exp)
    assert summary.epochs == 2 and [h["epoch"] for h in summary.history] == [1, 2]
    payload = read_checkpoint(exp.checkpoint_path)
    assert payload["meta"]["epoch"] == 2 and set(payload["optimizer"]) == {"state", "param_groups"}
    net, meta = load_supernet(exp.checkpoint_path)
    assert meta["space"] == get_space("tiny").to_declaration()  # the declaration, not a name
    assert meta["arch"]["width"] == 0.25 and meta["arch"]["num_classes"] == 10
    assert meta["data"]["train_limit"] == 256 and meta["proxy"]["resolution"] == 32
    assert not net.training
    # without --resume an existing supernet is never overwritten
    with pytest.raises(ConfigError, match="already holds a supernet"):
        train_supernet(exp)

    evaluator = SupernetScorer.from_checkpoint(exp.checkpoint_path, device="cpu")
    space = get_space("tiny")
    genotypes = [largest_genotype(space), smallest_genotype(space), space.sample(np.random.default_rng(0))]
    bad = named_genotype("b0")  # 7 blocks: not a path of the 3-block tiny space
    scores = evaluator.score_many(genotypes + [bad])
    assert [s.ok for s in scores] == [True, True, True, False]
    assert "not a path of the supernet" in scores[-1].reason and "3 blocks" in scores[-1].reason
    assert all(0.0 <= s.accuracy <= 1.0 for s in scores[:3])
    assert scores[0].info["calib_images"] == 64 and scores[0].info["eval_images"] == 200
    # the accuracy after training equals what the training loop measured for the largest path
    assert scores[0].accuracy == pytest.approx(summary.history[-1]["accuracy_largest"])
    # scoring is a function of the genotype: again, and after another path, the same number
    assert evaluator.score(genotypes[0]).accuracy == scores[0].accuracy
    # the resident held-out windows count exactly what nas.proxy.evaluate counts, short last batch included
    scorer = evaluator.scorer
    scorer.eval_batch_size = 64  # 200 held out = 3 x 64 + a last window of 8 new rows
    scorer._windows = scorer._eval_windows()
    assert [len(x) for x, _, _ in scorer._windows] == [64, 64, 64, 64] and scorer._windows[-1][1] == 56
    resident = [scorer(g)[0] for g in genotypes]
    scorer._windows = None  # the on-the-fly path: nas.proxy.evaluate over batches made per call
    assert [scorer(g)[0] for g in genotypes] == resident
    # the CLI: JSON per genotype with genotype and accuracy
    capsys.readouterr()
    assert main(["supernet", "eval", str(exp.checkpoint_path), genotypes[0].to_string(),
                 genotypes[2].to_string(), "--json", "--device", "cpu"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["genotype"] for r in rows] == [genotypes[0].to_string(), genotypes[2].to_string()]
    assert rows[0]["accuracy"] == pytest.approx(scores[0].accuracy)
    assert main(["supernet", "eval", str(exp.checkpoint_path), "r1_k3_s11_e1_i32_o16"]) == 2
    assert "not a path of the supernet" in capsys.readouterr().err
    assert main(["supernet", "eval", str(exp.checkpoint_path), "r1_k4_s11_e1_i32_o16"]) == 2


@pytest.mark.training
def test_cli_train_writes_config_and_rejects_mistakes_first(tmp_path, capsys):
    config = tmp_path / "sn.yaml"
    config.write_text(yaml.safe_dump(_cfg(tmp_path, name="cli", epochs=1)))
    assert main(["supernet", "train", str(config), "--set", "supernet.epochs=x"]) == 2
    assert "supernet.epochs: expected an integer" in capsys.readouterr().err
    assert main(["supernet", "train", str(config), "--workers", "3"]) == 2
    assert not (tmp_path / "cli").exists()  # nothing was written before the mistakes were caught
    assert main(["supernet", "train", str(config)]) == 0
    out = capsys.readouterr().out
    assert "epoch   1" in out and "checkpoint:" in out
    assert (tmp_path / "cli" / "config.yaml").is_file() and (tmp_path / "cli" / "supernet.pt").is_file()
    assert main(["supernet", "train", str(tmp_path / "cli"), "--resume", "--set", "supernet.epochs=2"]) == 0
    assert read_checkpoint(tmp_path / "cli" / "supernet.pt")["meta"]["epoch"] == 2
    out = capsys.readouterr().out
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert epoch_lines == [line for line in epoch_lines if line.startswith("epoch   2/2")] and len(epoch_lines) == 1, out
    assert "ETA" in epoch_lines[0]  # each epoch once, with its ETA
    # another recipe or seed never continues this checkpoint (one line naming the setting, exit 2); more epochs do
    assert main(["supernet", "train", str(tmp_path / "cli"), "--resume", "--set", "supernet.seed=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "supernet.seed=0" in err and "output.name" in err and len(err.splitlines()) == 1, err
    assert read_checkpoint(tmp_path / "cli" / "supernet.pt")["meta"]["epoch"] == 2
    from search_helpers import event_tags

    assert {"supernet/loss", "supernet/accuracy_largest", "supernet/accuracy_smallest", "supernet/lr"} <= \
        event_tags(tmp_path / "cli" / "tensorboard")
    metrics = [json.loads(line) for line in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]


def _epoch_of(path: Path) -> int:
    try:
        return int(read_checkpoint(path)["meta"]["epoch"])
    except (FileNotFoundError, ValueError):
        return 0


@pytest.mark.training
def test_resume_after_kill_9_continues_from_the_last_epoch(tmp_path, one_thread):
    # A constant learning rate, so the run killed while planning many epochs and the reference run
    # planned to stop one epoch after the kill follow the same schedule.
    data = _cfg(tmp_path, name="killed", epochs=100, schedule="constant", warmup_epochs=0)
    data["data"].update(train_limit=128, holdout=100)
    config = tmp_path / "sn.yaml"
    config.write_text(yaml.safe_dump(data))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", "supernet", "train", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ckpt = tmp_path / "killed" / "supernet.pt"
    deadline = time.time() + 120
    while time.time() < deadline and _epoch_of(ckpt) < 1:
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be killed:\n{proc.stdout.read()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _epoch_of(ckpt)
    assert 1 <= killed_at < 100, "the run finished before the kill"

    stop = [f"supernet.epochs={killed_at + 1}"]
    exp = load_supernet_experiment(config, overrides=stop)
    summary = train_supernet(exp, resume=True)
    assert summary.resumed_from == killed_at
    assert [h["epoch"] for h in summary.history] == list(range(1, killed_at + 2))
    resumed, _ = load_supernet(ckpt)

    # the same run without the kill: resuming changed nothing (every epoch is seeded by (seed, epoch))
    reference = load_supernet_experiment(config, overrides=stop + ["output.name=straight"])
    train_supernet(reference)
    straight, _ = load_supernet(reference.checkpoint_path)
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.training
def test_sgd_without_sandwich_and_adamw_with_kernel_transform_train(tmp_path, one_thread):
    for name, extra in (("spos", {"sandwich": False, "distill": False, "random_paths": 1}),
                        ("ofa", {"optimizer": "adamw", "lr": 0.003, "kernel_transform": True})):
        exp = load_supernet_experiment(data=_cfg(tmp_path, name=name, epochs=1, **extra))
        summary = train_supernet(exp)
        assert np.isfinite(summary.history[0]["loss"])
    net, _ = load_supernet(tmp_path / "ofa" / "supernet.pt")
    transforms = [p for n, p in net.named_parameters() if "transforms" in n]
    assert transforms and any(not torch.equal(p, torch.eye(p.shape[0])) for p in transforms)  # they learned


@pytest.mark.training
def test_nas_bench_macro_supernet_with_separate_weights_per_option_trains(tmp_path, one_thread):
    """Issue 21's variants are settings: SPOS uniform single paths on separate weights per (op, expand, kernel)."""
    data = _cfg(tmp_path, name="macro", epochs=1, sandwich=False, distill=False, random_paths=1,
                separate=["expand", "kernel"])
    exp = load_supernet_experiment(data={**data, "space": "nas-bench-macro"})
    summary = train_supernet(exp)
    assert np.isfinite(summary.history[0]["loss"])
    net, meta = load_supernet(exp.checkpoint_path)
    assert meta["arch"]["separate"] == ("expand", "kernel")
    assert sorted(net.layers[1][0].groups) == ["mbconv_e3_k3", "mbconv_e6_k5"]


def test_a_genotype_that_breaks_the_walk_is_a_failed_score(tmp_path, monkeypatch):
    """Scoring never raises: an exception inside a path becomes a failed Score with the reason."""
    from nas.supernet.evaluate import PathScorer

    data = _cfg(tmp_path, name="x")
    exp = load_supernet_experiment(data=data)
    from nas.supernet.checkpoint import save_checkpoint
    from nas.experiment.supernet import arch_options
    from nas.supernet.train import _meta
    from efficientnet.supernet import Supernet

    net = Supernet(get_space("tiny"), **arch_options(exp, 10))
    save_checkpoint(exp.checkpoint_path, net, None, _meta(exp, net, 1, [], 1))
    evaluator = SupernetScorer.from_checkpoint(exp.checkpoint_path, device="cpu")

    def boom(self, genotype):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(PathScorer, "__call__", boom)
    score = evaluator.score(largest_genotype(get_space("tiny")))
    assert score.status == "failed" and score.reason.startswith("out of memory")
    odd = Genotype(tuple(BlockGene(filters=16) for _ in range(3)))
    assert "not a path" in evaluator.score(odd).reason


@pytest.mark.training
def test_an_ensemble_trains_its_members_with_their_own_seeds_and_scores_their_mean(tmp_path, one_thread, capsys):
    from nas.supernet.ensemble import EnsembleScorer, check_members

    exp = load_supernet_experiment(data=_cfg(tmp_path, epochs=1, ensemble=2, seed=3))
    summary = train_supernet(exp)
    first, second = exp.checkpoint_path, tmp_path / "sn" / "supernet-member1.pt"
    assert summary.checkpoint == str(first) and [m.checkpoint for m in summary.members] == [str(first), str(second)]
    assert read_checkpoint(second)["meta"]["supernet"]["seed"] == 4  # seed + k
    lines = [json.loads(x) for x in (tmp_path / "sn" / "metrics.jsonl").read_text().splitlines()]
    assert [(m["member"], m["members"]) for m in lines] == [(0, 2), (1, 2)]
    ensemble = SupernetScorer.from_checkpoint(first, device="cpu")
    assert isinstance(ensemble, EnsembleScorer) and len(ensemble.members) == 2
    alone = SupernetScorer.from_checkpoint(second, device="cpu")  # a member loaded alone scores alone
    space = get_space("tiny")
    genotypes = [largest_genotype(space), smallest_genotype(space), space.sample(np.random.default_rng(1))]
    together = ensemble.score_many(genotypes)
    for g, score in zip(genotypes, together):
        own, other = ensemble.members[0].score(g).accuracy, alone.score(g).accuracy
        assert score.accuracy == pytest.approx((own + other) / 2) and score.info["member_accuracies"] == [own, other]
    assert any(ensemble.members[0].score(g).accuracy != alone.score(g).accuracy for g in genotypes)  # two seeds
    assert ensemble.score(genotypes[2]).accuracy == pytest.approx(together[2].accuracy)
    # both members done: resuming reuses them; a missing or unfinished member is one line naming it
    assert train_supernet(exp, resume=True).members[1].resumed_from == 1
    meta = read_checkpoint(first)["meta"]
    second.rename(tmp_path / "aside.pt")
    with pytest.raises(ValueError, match=r"^member 1 of the 2-supernet ensemble, .*supernet-member1.pt', is missing; "
                                         r"finish its training: nas supernet train RUN_DIR --resume$"):
        check_members(first, meta)
    capsys.readouterr()
    assert main(["supernet", "eval", str(first), genotypes[0].to_string()]) == 2  # before the data is loaded
    assert "member 1 of the 2-supernet ensemble" in capsys.readouterr().err
    # a finished single supernet grows into an ensemble on a resume: member 0 is kept and records the count
    single = load_supernet_experiment(data=_cfg(tmp_path, name="grow", epochs=1))
    train_supernet(single)
    weights = read_checkpoint(single.checkpoint_path)["model"]
    grown = load_supernet_experiment(data=_cfg(tmp_path, name="grow", epochs=1, ensemble=2))
    assert train_supernet(grown, resume=True).members[0].resumed_from == 1
    payload = read_checkpoint(grown.checkpoint_path)
    assert payload["meta"]["supernet"]["ensemble"] == 2
    assert all(torch.equal(weights[k], v) for k, v in payload["model"].items())
    assert isinstance(SupernetScorer.from_checkpoint(grown.checkpoint_path, device="cpu"), EnsembleScorer)

