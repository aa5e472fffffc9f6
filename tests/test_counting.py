"""Analytical parameter and multiply-add counts: the coefficient table, hand-checked layers, and two
independent counts on the built module (forward hooks, and torch's FlopCounterMode)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from efficientnet import (COEFFICIENTS, LayerSpec, ModelSpec, build_model, count, count_arch, count_spec,
                          layer_cost, measure_macs, model_spec, walk)
from efficientnet.scaling import B0_MACS, OFFICIAL_GMACS, OFFICIAL_PARAMS
from search_spaces import get_space, named_genotype


@pytest.mark.parametrize("index", range(8), ids=[f"b{i}" for i in range(8)])
def test_official_family_counts(index):
    name = f"efficientnet-b{index}"
    spec = model_spec("b0", model=name)
    assert (spec.width, spec.depth, spec.resolution) == (COEFFICIENTS[name].width, COEFFICIENTS[name].depth,
                                                         COEFFICIENTS[name].resolution)
    params, macs = count_spec(spec)
    assert params == OFFICIAL_PARAMS[index]
    assert macs == pytest.approx(OFFICIAL_GMACS[index] * 1e9, rel=0.01)


def test_b0_macs_exact():
    assert count_spec(model_spec("b0")) == (OFFICIAL_PARAMS[0], B0_MACS)


def test_layer_costs_by_hand():
    # stem: 3x3 conv 3->32, stride 2, 224 -> 112; BatchNorm adds 2 * 32 parameters
    stem = LayerSpec("stem", 3, 32, kernel=3, stride=2, in_size=224, index=-1)
    assert layer_cost(stem) == (3 * 32 * 9 + 64, 3 * 32 * 9 * 112 * 112)
    # MBConv e6 k3 s2 se0.25, 16 -> 24 at 112 -> 56 (B0 stage 2, first layer)
    spec = LayerSpec("mbconv", 16, 24, kernel=3, stride=2, expand=6, se=0.25, in_size=112, index=1)
    mid, sq = 96, 4
    params = (16 * mid + 2 * mid) + (mid * 9 + 2 * mid) + (mid * sq + sq + sq * mid + mid) + (mid * 24 + 2 * 24)
    macs = 16 * mid * 112 * 112 + mid * 9 * 56 * 56 + 2 * mid * sq + mid * 24 * 56 * 56
    assert layer_cost(spec) == (params, macs)
    # MnasNet's regular conv: k5 full conv 24 -> 40, stride 1 at 28, no SE
    conv = LayerSpec("conv", 24, 40, kernel=5, stride=1, in_size=28, index=3)
    assert layer_cost(conv) == (24 * 40 * 25 + 80, 24 * 40 * 25 * 28 * 28)
    # head 1x1 320 -> 1280 at 7, then the classifier (counted by count())
    head = LayerSpec("head", 320, 1280, in_size=7, index=-1)
    assert layer_cost(head) == (320 * 1280 + 2 * 1280, 320 * 1280 * 49)
    assert count([stem, head], num_classes=10) == (layer_cost(stem)[0] + layer_cost(head)[0] + 1280 * 10 + 10,
                                                   layer_cost(stem)[1] + layer_cost(head)[1] + 1280 * 10)


def test_odd_sizes_round_up():
    # "same" padding: ceil(size / stride) at every stride-2 layer
    layers = walk(model_spec("b0").arch(), 225)
    assert [layer.out_size for layer in layers if layer.stride == 2] == [113, 57, 29, 15, 8]


def _random_specs(n: int, seed: int) -> list[ModelSpec]:
    space = get_space("mnasnet")
    rng = np.random.default_rng(seed)
    specs = []
    for _ in range(n):
        specs.append(ModelSpec(space.sample(rng), width=float(rng.choice([0.25, 0.35, 0.5, 0.75])),
                               depth=float(rng.choice([0.5, 1.0, 1.3])), resolution=int(rng.integers(24, 97)),
                               num_classes=int(rng.choice([0, 10, 100])), stem_stride=int(rng.choice([1, 2]))))
    return specs


def test_count_arch_equals_walk_count():
    for spec in _random_specs(200, seed=3):
        arch = spec.arch()
        assert count_arch(arch, spec.resolution, spec.num_classes) == count(walk(arch, spec.resolution),
                                                                             spec.num_classes)


def test_hook_count_matches_b0():
    model = build_model(model_spec("b0"))
    assert measure_macs(model, 224) == B0_MACS
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[0]


def test_flop_counter_matches_b0():
    model = build_model(model_spec("b0")).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    assert counter.get_total_flops() / 2 == pytest.approx(B0_MACS, rel=1e-9)


@pytest.mark.parametrize("spec", _random_specs(10, seed=17), ids=lambda s: f"w{s.width}-d{s.depth}-r{s.resolution}")
def test_analytical_equals_built_module(spec):
    params, macs = count_spec(spec)
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == params
    assert measure_macs(model, spec.resolution) == macs
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, spec.resolution, spec.resolution))
    assert counter.get_total_flops() // 2 == macs


def test_same_padding_does_not_change_counts():
    spec = ModelSpec(named_genotype("mnasnet-a1"), width=0.5, resolution=65)
    params, macs = count_spec(spec)
    model = build_model(spec, same_padding=True)
    assert sum(p.numel() for p in model.parameters()) == params
    assert measure_macs(model, 65) == macs


def test_count_caches_do_not_leak_between_resolutions():
    arch = model_spec("b0").arch()
    small, big = count_arch(arch, 64), count_arch(arch, 224)
    assert small[0] == big[0] and small[1] < big[1]
    assert count_arch(arch, 64) == small == count(walk(arch, 64))


def test_walk_rejects_bad_resolution():
    with pytest.raises(ValueError, match="resolution"):
        walk(model_spec("b0").arch(), 0)
