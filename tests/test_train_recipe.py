"""The EfficientNet recipe pieces by hand: TF RMSProp, the lr schedule, EMA, the config defaults and errors."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from torch import nn

from nas.config import ConfigError
from nas.experiment.train import ModelConfig, TrainConfig, load_train_experiment
from nas.train.optim import EfficientNetSchedule, ModelEma, RMSpropTF, param_groups


def test_rmsprop_tf_two_steps_by_hand():
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = RMSpropTF([w], lr=0.1, decay=0.9, momentum=0.9, eps=1e-3, weight_decay=0.0)
    ms, mom, value = 1.0, 0.0, 1.0  # ms starts at one (TF), eps inside the root, lr inside the momentum
    for _ in range(2):
        w.grad = torch.tensor([0.5], dtype=torch.float64)
        opt.step()
        ms = 0.9 * ms + 0.1 * 0.25
        mom = 0.9 * mom + 0.1 * 0.5 / math.sqrt(ms + 1e-3)
        value -= mom
        assert w.item() == pytest.approx(value, abs=1e-12)
    assert value == pytest.approx(1 - 0.0519594 - (0.9 * 0.0519594 + 0.05 / math.sqrt(0.8585)), abs=1e-6)
    # torch's RMSprop (ms from 0, eps outside the root) takes another path: the conventions differ
    v = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    ref = torch.optim.RMSprop([v], lr=0.1, alpha=0.9, eps=1e-3, momentum=0.9)
    v.grad = torch.tensor([0.5], dtype=torch.float64)
    ref.step()
    assert abs(v.item() - (1 - 0.0519594)) > 0.1


def test_rmsprop_tf_weight_decay_is_l2_on_the_gradient():
    w = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = RMSpropTF([w], lr=0.01, decay=0.9, momentum=0.0, eps=1e-3, weight_decay=0.1)
    w.grad = torch.tensor([0.0], dtype=torch.float64)
    opt.step()
    g = 0.1 * 2.0  # d/dw of 0.1 * w^2 / 2
    assert w.item() == pytest.approx(2.0 - 0.01 * g / math.sqrt(0.9 + 0.1 * g * g + 1e-3), abs=1e-12)
    with pytest.raises(ValueError, match="RMSpropTF needs"):
        RMSpropTF([w], lr=0.1, decay=1.0)


def test_weight_decay_skips_batchnorm_only():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 1e-5)
    assert decay["weight_decay"] == 1e-5 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) == 4 and len(no_decay["params"]) == 2  # conv w+b, linear w+b | BN gamma, beta


def test_schedule_by_hand():
    s = EfficientNetSchedule(peak=0.256, steps_per_epoch=100, warmup_epochs=5, decay_epochs=2.4, decay_rate=0.97)
    assert s.warmup_steps == 500 and s.decay_steps == pytest.approx(240)
    assert s.lr(0) == 0.0
    assert s.lr(250) == pytest.approx(0.128)
    assert s.lr(499) == pytest.approx(0.256 * 499 / 500)
    assert s.lr(500) == pytest.approx(0.256 * 0.97 ** 2)  # the staircase counts from step 0: floor(500/240) = 2
    assert s.lr(719) == pytest.approx(0.256 * 0.97 ** 2)
    assert s.lr(720) == pytest.approx(0.256 * 0.97 ** 3)
    assert s.lr(35000) == pytest.approx(0.256 * 0.97 ** 145)  # epoch 350
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    for _ in range(250):
        s.advance()
    assert s.apply(opt) == pytest.approx(0.128) and opt.param_groups[0]["lr"] == pytest.approx(0.128)
    t = EfficientNetSchedule(0.256, 100, 5, 2.4, 0.97)
    t.load_state_dict(s.state_dict())
    assert t.step == 250 and t.lr() == s.lr()
    no_warmup = EfficientNetSchedule(0.1, 10, 0, 1, 0.5)
    assert [no_warmup.lr(k) for k in (0, 9, 10, 25)] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_ema_by_hand():
    model = nn.BatchNorm1d(1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = ModelEma(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(10.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(0.9 * 1.0 + 0.1 * 2.0)
    assert ema.module.running_mean.item() == pytest.approx(0.1 * 10.0)  # BN statistics are averaged too
    assert ema.module.num_batches_tracked.item() == 7  # integer buffers are copied
    ema.update(model)
    assert ema.module.weight.item() == pytest.approx(0.9 * 1.1 + 0.1 * 2.0)
    assert not any(p.requires_grad for p in ema.module.parameters())
    warm = ModelEma(nn.Linear(1, 1), decay=0.9999, warmup=True)
    assert warm.current_decay() == pytest.approx(1 / 10)  # TF num_updates: min(decay, (1 + n) / (10 + n))
    warm.updates = 1
    assert warm.current_decay() == pytest.approx(2 / 11)
    warm.updates = 10 ** 6
    assert warm.current_decay() == 0.9999
    copy = ModelEma(nn.BatchNorm1d(1), decay=0.9)
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 2 and copy.module.weight.item() == pytest.approx(ema.module.weight.item())


def test_defaults_are_the_efficientnet_recipe():
    c = TrainConfig()
    assert (c.optimizer, c.rmsprop_decay, c.momentum, c.epsilon) == ("rmsprop", 0.9, 0.9, 1e-3)
    assert c.bn_decay == 0.99 and c.bn_momentum == pytest.approx(0.01) and c.bn_eps == 1e-3
    assert c.weight_decay == 1e-5
    assert (c.lr, c.lr_batch, c.peak_lr()) == (0.256, 4096, 0.256)
    assert TrainConfig(batch_size=256).peak_lr() == pytest.approx(0.016)  # the reference's 0.016 per 256
    assert (c.warmup_epochs, c.decay_epochs, c.decay_rate) == (5.0, 2.4, 0.97)
    assert c.survival == 0.8 and c.drop_connect_rate == pytest.approx(0.2)
    assert c.ema_decay == 0.9999 and c.ema_warmup and c.label_smoothing == 0.1
    assert c.augment == "autoaugment" and c.crop == "inception" and c.eval_crop == 0.875
    assert c.dropout is None and c.epochs == 350


@pytest.mark.parametrize("name, dropout", [("efficientnet-b0", 0.2), ("efficientnet-b1", 0.2),
                                           ("efficientnet-b2", 0.3), ("efficientnet-b3", 0.3),
                                           ("efficientnet-b4", 0.4), ("efficientnet-b5", 0.4),
                                           ("efficientnet-b6", 0.5), ("efficientnet-b7", 0.5)])
def test_dropout_comes_from_the_coefficient_table(name, dropout):
    from nas.commands.train import scale

    assert scale(ModelConfig(name=name))[3] == dropout


def test_cli_scale_options():
    from nas.commands.train import model_config, scale
    from nas.experiment.train import TrainExperiment

    exp = TrainExperiment()

    def ns(**kw):
        base = {"model": None, "phi": None, "width": None, "depth": None, "resolution": None}
        return argparse.Namespace(**{**base, **kw})

    assert scale(model_config(exp, ns(model="efficientnet-b3"))) == (1.2, 1.4, 300, 0.3)
    assert scale(model_config(exp, ns(phi=1))) == (1.1, 1.2, 256, 0.2)  # 1.1, 1.2, 224 * 1.15 -> 256
    assert scale(model_config(exp, ns(model="efficientnet-b2", width=0.5, resolution=64)))[:3] == (0.5, 1.2, 64)
    with pytest.raises(ValueError, match="--model and --phi"):
        model_config(exp, ns(model="efficientnet-b1", phi=1))


def test_strict_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"train.epoch: unknown key; allowed keys here: epochs"):
        load_train_experiment(bad)
    with pytest.raises(ConfigError, match=r"train.survival must be in \(0, 1\]"):
        load_train_experiment(None, ["train.survival=1.5"])
    with pytest.raises(ConfigError, match=r"train.batch_size \(10\) must be a multiple of workers.count \(3\)"):
        load_train_experiment(None, ["train.batch_size=10", "workers.count=3"])
    with pytest.raises(ConfigError, match="model.name must be one of"):
        load_train_experiment(None, ["model.name=efficientnet-b9"])
    with pytest.raises(ConfigError, match="data.path"):
        load_train_experiment(None, ["data.kind=npz", f"data.path={tmp_path / 'missing.npz'}"])
    exp = load_train_experiment("experiments/train_quick.yaml")
    assert exp.output.name == "train_quick" and exp.workers.count == 2 and exp.run_dir.is_absolute()


def test_cli_user_mistakes_exit_2(tmp_path, capsys):
    from nas.cli import main

    cfg = tmp_path / "t.yaml"
    cfg.write_text("train:\n  batch_size: 4096\noutput:\n  dir: " + str(tmp_path) + "\n")
    assert main(["train", "b0", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.batch_size: 4096" in err[0] and "lower train.batch_size" in err[0]
    assert main(["train", "r9_bad", str(cfg)]) == 2
    assert main(["train", "b0", str(tmp_path / "none.yaml")]) == 2
    assert main(["train", "b0", str(cfg), "--resume"]) == 2
    assert "--resume: no training at" in capsys.readouterr().err
