"""The MnasNet reward ACC * (cost / T) ** w: hand-checkable numbers, both forms, validation errors,
and that a trial's cost is the TARGET model's (224x224, 1000 classes), not the proxy network's."""

from __future__ import annotations

import math

import pytest

from efficientnet.scaling import B0_MACS, OFFICIAL_PARAMS
from nas.config import ConfigError, from_dict
from nas.cost.analytic import MacsCost, ParamsCost
from nas.cost.target import TargetModel
from nas.cost.base import build_cost_model
from nas.cost.objective import ObjectiveConfig, reward
from search_spaces import named_genotype

B0_PARAMS = OFFICIAL_PARAMS[0]


# -- soft form (EfficientNet: alpha = beta = w = -0.07) ---------------------------------------------
def test_soft_at_target_is_accuracy():
    assert reward(0.75, 400e6, ObjectiveConfig()) == pytest.approx(0.75)


def test_soft_twice_the_target():
    # 2 ** -0.07 = exp(-0.07 ln 2) = 0.952638...
    assert reward(0.8, 800e6, ObjectiveConfig()) == pytest.approx(0.8 * 0.9526380, rel=1e-6)


def test_soft_half_the_target_is_rewarded():
    # 0.5 ** -0.07 = 1.049717...
    assert reward(0.8, 200e6, ObjectiveConfig()) == pytest.approx(0.8 * 1.0497167, rel=1e-6)


def test_soft_w_minus_one_is_accuracy_over_relative_cost():
    cfg = ObjectiveConfig(target=100.0, w=-1.0)
    assert reward(0.6, 300.0, cfg) == pytest.approx(0.2)
    assert reward(0.6, 50.0, cfg) == pytest.approx(1.2)


def test_w_zero_ignores_cost():
    cfg = ObjectiveConfig(w=0.0)
    assert reward(0.42, 1e12, cfg) == 0.42 and reward(0.42, 1.0, cfg) == 0.42


# -- hard form (MnasNet: alpha = 0, beta = -1) ------------------------------------------------------
def test_hard_under_target_is_accuracy():
    cfg = ObjectiveConfig(form="hard", target=400e6)
    assert cfg.exponents == (0.0, -1.0)
    assert reward(0.7, 100e6, cfg) == pytest.approx(0.7)
    assert reward(0.7, 400e6, cfg) == pytest.approx(0.7)  # cost == T counts as "under" (alpha)


def test_hard_over_target_divides_by_relative_cost():
    cfg = ObjectiveConfig(form="hard", target=400e6)
    assert reward(0.7, 800e6, cfg) == pytest.approx(0.35)
    assert reward(0.9, 1200e6, cfg) == pytest.approx(0.3)


def test_soft_prefers_the_cheaper_model_at_equal_accuracy():
    cfg = ObjectiveConfig()
    assert reward(0.7, 300e6, cfg) > reward(0.7, 400e6, cfg) > reward(0.7, 500e6, cfg)


def test_zero_accuracy_gives_zero_reward():
    assert reward(0.0, 123.0, ObjectiveConfig(target=100.0)) == 0.0


# -- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [0, -1.0, math.inf, math.nan])
def test_target_must_be_positive(target):
    with pytest.raises(ValueError, match=r"objective\.target"):
        ObjectiveConfig(target=target)


@pytest.mark.parametrize("w", [0.07, 1.0, math.nan])
def test_w_must_not_be_positive(w):
    with pytest.raises(ValueError, match=r"objective\.w must be <= 0"):
        ObjectiveConfig(w=w)


@pytest.mark.parametrize("accuracy", [-0.01, 1.01, 75.0, math.nan])
def test_accuracy_outside_unit_interval(accuracy):
    with pytest.raises(ValueError, match=r"accuracy must be in \[0, 1\]"):
        reward(accuracy, 400e6, ObjectiveConfig())


@pytest.mark.parametrize("cost", [0.0, -5.0, math.inf])
def test_cost_must_be_positive_finite(cost):
    with pytest.raises(ValueError, match="cost must be a positive finite number"):
        reward(0.5, cost, ObjectiveConfig())


def test_yaml_mistakes_name_the_field():
    with pytest.raises(ConfigError, match=r"objective\.form: 'medium' is not allowed"):
        from_dict(ObjectiveConfig, {"form": "medium"}, "objective")
    with pytest.raises(ConfigError, match=r"objective.*target"):
        from_dict(ObjectiveConfig, {"target": -3}, "objective")
    assert from_dict(ObjectiveConfig, {"target": "4e8"}, "objective").target == 400e6


# -- cost on the TARGET model --------------------------------------------------------------------------
def test_cost_is_the_target_model():
    b0 = named_genotype("b0")
    assert isinstance(build_cost_model("macs", TargetModel()), MacsCost)
    assert build_cost_model("macs", TargetModel()).cost(b0) == B0_MACS
    assert isinstance(build_cost_model("params", TargetModel()), ParamsCost)
    assert build_cost_model("params", TargetModel()).cost(b0) == B0_PARAMS
    # B0 at 224 is 385.8M MACs: just under T = 400M, so the soft reward is slightly above the accuracy.
    assert reward(0.5, B0_MACS, ObjectiveConfig()) == pytest.approx(0.5 * (B0_MACS / 400e6) ** -0.07)
