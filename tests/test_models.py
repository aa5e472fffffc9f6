"""The nn.Module builder: the official family, any genotype of the space, residuals, stochastic depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from efficientnet import (COEFFICIENTS, EfficientNet, ModelSpec, build_model, count_spec, create_model, model_spec,
                          scale_arch, stages_from_genotype, walk)
from efficientnet.blocks import Block, Conv2dSame, drop_path
from efficientnet.scaling import OFFICIAL_PARAMS
from search_spaces import BlockGene, Genotype, get_space, named_genotype


def _numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("index", range(8), ids=[f"b{i}" for i in range(8)])
def test_official_family_built_params(index):
    # Building B7 (66 M parameters) on the CPU takes about 2 s; the others less.
    model = create_model(f"efficientnet-b{index}")
    assert _numel(model) == OFFICIAL_PARAMS[index] == count_spec(model_spec("b0", model=f"efficientnet-b{index}"))[0]
    coef = COEFFICIENTS[f"efficientnet-b{index}"]
    assert model.dropout.p == coef.dropout
    assert len(model.blocks) == model.arch.num_layers


def test_b0_structure_matches_table1():
    model = create_model("efficientnet-b0")
    x = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        feats = model.eval().forward_features(x)
    assert feats.shape == (1, 1280, 7, 7)
    assert len(model.blocks) == 16
    assert model.classifier.in_features == 1280 and model.classifier.out_features == 1000
    # Table 1: resolution entering each stage 112, 112, 56, 28, 14, 14, 7
    layers = walk(model.arch, 224)
    firsts = [layers[1 + sum(s.layers for s in model.arch.stages[:i])].in_size for i in range(7)]
    assert firsts == [112, 112, 56, 28, 14, 14, 7]


def _random_genotypes(n: int, seed: int) -> list[Genotype]:
    space = get_space("mnasnet")
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


SPECIAL = Genotype((
    BlockGene(op="conv", kernel=3, stride=1, expand=1, se=0.25, skip=True, filters=32, layers=2),   # conv + SE + residual
    BlockGene(op="conv", kernel=5, stride=2, expand=1, se=0.0, skip=False, filters=24, layers=2),   # conv, no skip
    BlockGene(op="mbconv", kernel=5, stride=1, expand=1, se=0.0, skip=True, filters=24, layers=2),  # sepconv
    BlockGene(op="mbconv", kernel=3, stride=2, expand=3, se=0.25, skip=False, filters=40, layers=3),
))


@pytest.mark.parametrize("genotype, width, depth", [
    (SPECIAL, 0.5, 1.0),
    (SPECIAL, 1.0, 1.5),
    *[(g, w, d) for g, w, d in zip(_random_genotypes(6, seed=21), [0.25, 0.5, 0.35, 0.25, 0.5, 0.25],
                                   [1.0, 0.5, 1.2, 1.0, 0.8, 1.0])],
], ids=lambda v: f"{v}" if isinstance(v, float) else None)
def test_any_genotype_builds_and_trains(genotype, width, depth):
    spec = ModelSpec(genotype, width=width, depth=depth, resolution=32, num_classes=10)
    model = build_model(spec)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 32, 32, generator=gen)
    y = torch.tensor([0, 1, 2, 3])
    model.train()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert _numel(model) == count_spec(spec)[0]
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (4, 10)


def _block_io(block: Block) -> tuple[int, int, int]:
    """(in channels, out channels, stride) read from the block's own conv modules."""
    first = (block.expand or block.conv)[0]
    last = (block.project or block.conv)[0]
    return first.in_channels, last.out_channels, block.conv[0].stride[0]


@pytest.mark.parametrize("genotype", [SPECIAL, named_genotype("b0"), named_genotype("mnasnet-a1"),
                                      *_random_genotypes(5, seed=8)])
def test_residual_only_with_stride1_and_equal_channels(genotype):
    model = build_model(ModelSpec(genotype, width=0.5, resolution=32, num_classes=10))
    skips = [stage.skip for stage in model.arch.stages for _ in range(stage.layers)]
    for block, skip in zip(model.blocks, skips):
        cin, cout, stride = _block_io(block)
        assert block.residual == (skip and stride == 1 and cin == cout)


def test_residual_is_applied():
    genotype = Genotype((BlockGene(filters=32, layers=1, skip=True), BlockGene(filters=32, layers=1, skip=False)))
    model = build_model(ModelSpec(genotype, resolution=16, num_classes=0)).eval()
    residual, plain = model.blocks
    assert residual.residual and not plain.residual
    for block in (residual, plain):  # the projection's BatchNorm outputs exactly zero
        nn.init.zeros_(block.project[1].weight)
        nn.init.zeros_(block.project[1].bias)
    x = torch.randn(2, 32, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(residual(x), x)
        assert torch.equal(plain(x), torch.zeros_like(x))


def test_stochastic_depth_grows_with_block_index():
    model = create_model("efficientnet-b0", drop_connect_rate=0.2)
    rates = [block.drop_rate for block in model.blocks]
    assert rates[0] == 0.0
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert all(a < b for a, b in zip(rates, rates[1:]))
    assert all(r == 0.0 for r in (b.drop_rate for b in create_model(drop_connect_rate=0.0).blocks))


def test_drop_path_statistics():
    x = torch.ones(4000, 1, 1, 1)
    assert torch.equal(drop_path(x, 0.5, training=False), x)
    assert torch.equal(drop_path(x, 0.0, training=True), x)
    out = drop_path(x, 0.5, training=True)
    assert set(out.flatten().tolist()) <= {0.0, 2.0}
    assert 0.45 < (out == 0).float().mean().item() < 0.55
    assert out.mean().item() == pytest.approx(1.0, abs=0.1)


def test_same_padding_uses_tf_convs_and_keeps_shapes():
    spec = ModelSpec(named_genotype("b0"), width=0.25, resolution=33, num_classes=10)
    tf_style, torch_style = build_model(spec, same_padding=True), build_model(spec)
    assert any(isinstance(m, Conv2dSame) for m in tf_style.modules())
    assert not any(isinstance(m, Conv2dSame) for m in torch_style.modules())
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        assert tf_style.eval().forward_features(x).shape == torch_style.eval().forward_features(x).shape == (2, 320, 2, 2)


def test_bn_settings_pass_through():
    model = create_model("efficientnet-b0", bn_eps=1e-5, bn_momentum=0.1)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(m.eps == 1e-5 and m.momentum == 0.1 for m in bns)


def test_builder_rejects_mistakes():
    with pytest.raises(TypeError):
        create_model("efficientnet-b0", drop_conect_rate=0.1)  # a typo is an error, not a silent no-op
    with pytest.raises(ValueError, match="dropout"):
        create_model("efficientnet-b0", dropout=1.0)
    with pytest.raises(ValueError, match="drop_connect_rate"):
        create_model("efficientnet-b0", drop_connect_rate=-0.1)
    with pytest.raises(ValueError, match="efficientnet-b9"):
        create_model("efficientnet-b9")
    with pytest.raises(ValueError, match="width"):
        scale_arch(stages_from_genotype(named_genotype("b0")), width=-1.0)
    with pytest.raises(ValueError, match="stem_stride"):
        ModelSpec(named_genotype("b0"), stem_stride=3).arch()


def test_headless_model_has_no_classifier():
    model = build_model(ModelSpec(named_genotype("b0"), width=0.25, resolution=32, num_classes=0))
    assert isinstance(model.classifier, nn.Identity)
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 320)


def test_model_is_an_efficientnet():
    assert isinstance(create_model("efficientnet-b0"), EfficientNet)
