"""The op registry, network side: every op's count equals its module, activations come from the genotype,
skip layers, fused blocks, and NAS-Bench-Macro's published params/flops for all 6,561 keys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from efficientnet import ModelSpec, build_model, count_spec, layer_cost, measure_macs, walk
from efficientnet.blocks import ACTIVATIONS, Block, Norms
from efficientnet.ops import OPS
from search_spaces import BlockGene, Frame, Genotype, get_space, shipped_spaces
from search_spaces.genes import ACTIVATIONS as ACTIVATION_NAMES
from search_spaces.ops import OPS as OP_FACTS
from space_helpers import MACRO_CLASSES, MACRO_RESOLUTION, macro_genotype, macro_table, random_genotype

ACT_TYPES = {"silu": nn.SiLU, "relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}


def test_the_two_registries_list_the_same_ops_and_activations():
    assert tuple(OPS) == tuple(OP_FACTS)
    assert set(ACTIVATIONS) == set(ACTIVATION_NAMES) == set(ACT_TYPES)
    for name, op in OPS.items():
        assert op.facts is OP_FACTS[name]


# -- NAS-Bench-Macro: the converged table's own counts ---------------------------------------------------

def _macro_spec(key: str) -> ModelSpec:
    return ModelSpec(macro_genotype(key), resolution=MACRO_RESOLUTION, num_classes=MACRO_CLASSES)


def test_nas_bench_macro_params_and_flops_equal_the_table_for_every_key():
    """Su et al. 2021: ``params`` (every parameter: BN affine pairs, classifier bias) and ``flops`` (conv + linear
    multiply-adds at 32x32) of all 6,561 keys equal effnas's analytic counts -- no rule differs."""
    table = macro_table()
    assert len(table) == 6561
    counts = {key: count_spec(_macro_spec(key)) for key in table}
    wrong = [(key, counts[key], (row["params"], row["flops"])) for key, row in table.items()
             if counts[key] != (row["params"], row["flops"])]
    assert wrong == []
    # the extremes (README: flops 7.7M-105.7M): all-identity and all-MB6_K5
    assert count_spec(_macro_spec("00000000")) == (387_882, 7_713_280)
    assert count_spec(_macro_spec("22222222")) == (2_932_586, 105_660_928)
    flops = [row["flops"] for row in table.values()]
    assert (min(flops), max(flops)) == (7_713_280, 105_660_928)


@pytest.mark.parametrize("key", ["00000000", "22222222", "02012100", "10201021", "21000120"])
def test_nas_bench_macro_built_modules_count_as_the_table(key):
    row = macro_table()[key]
    model = build_model(_macro_spec(key))
    assert sum(p.numel() for p in model.parameters()) == row["params"]
    assert measure_macs(model, MACRO_RESOLUTION) == row["flops"]
    # ReLU from the genotype's frame, no SE, stride-1 stem, no keyword given
    acts = {type(m) for m in model.modules() if isinstance(m, tuple(ACT_TYPES.values()))}
    assert acts == {nn.ReLU}
    assert model.stem[0].stride == (1, 1)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_aliased_identity_orders_build_the_same_module():
    """Inside a stage an identity may sit anywhere (NAS-Bench-Macro's ``201`` builds as ``210``): identity layers
    have no module and no stochastic-depth index, so both build identical modules and counts."""
    a, b = _macro_spec("20" "102" "100"), _macro_spec("20" "120" "100")
    shapes = [{k: v.shape for k, v in build_model(s, drop_connect_rate=0.2).state_dict().items()} for s in (a, b)]
    assert shapes[0] == shapes[1]
    rates = [[blk.drop_rate for blk in build_model(s, drop_connect_rate=0.2).blocks] for s in (a, b)]
    assert rates[0] == rates[1] == pytest.approx([0.2 * i / 4 for i in range(4)])
    assert count_spec(a) == count_spec(b)
    body = walk(a.arch(), 32)[1:-1]
    assert [s.index for s in body] == [0, -1, 1, -1, 2, 3, -1, -1]
    assert [s.is_identity for s in body] == [False, True, False, True, False, False, True, True]
    torch.manual_seed(0)
    ma = build_model(a).eval()
    mb = build_model(b).eval()
    mb.load_state_dict(ma.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ma(x), mb(x))


def test_skip_layers_identity_or_strided_projection():
    g = Genotype((BlockGene(op="skip", kernel=1, stride=1, filters=16, layers=2),     # identity x2
                  BlockGene(op="skip", kernel=1, stride=2, filters=24, layers=2),     # 1x1 s2 conv, then identity
                  BlockGene(op="mbconv", kernel=3, stride=1, expand=3, filters=24, layers=1)),
                 Frame(stem=16))
    spec = ModelSpec(g, resolution=16, num_classes=0)
    layers = walk(spec.arch(), 16)[1:-1]
    assert [layer_cost(s) for s in layers[:2]] == [(0, 0), (0, 0)]
    assert layer_cost(layers[2]) == (16 * 24 + 2 * 24, 16 * 24 * 4 * 4)  # 16 px, stem s2: 8 -> 4
    assert layers[3].is_identity and not layers[2].residual
    model = build_model(spec).eval()
    assert len(model.blocks) == 2  # the strided skip and the mbconv
    conv = model.blocks[0].project[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (16, 24, (1, 1), (2, 2))
    assert isinstance(model.blocks[0].project[2], nn.Identity) and model.blocks[0].expand is None
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():  # the identities are left out: the stem feeds the strided skip directly
        assert model.blocks[0](model.stem(x)).shape == (2, 24, 4, 4)
        assert torch.equal(model.forward_features(x), model.head(model.blocks[1](model.blocks[0](model.stem(x)))))


def test_fused_is_timms_edge_residual():
    """timm ``EdgeResidual``: conv_exp kxk in->in*e WITH the stride + BN + act, SE on the expanded features
    (squeeze from the block's input channels here), conv_pwl 1x1 + BN; residual where stride 1 and in == out."""
    g = Genotype((BlockGene(op="fused", kernel=5, stride=2, expand=4, se=0.25, filters=24, layers=2),),
                 Frame(stem=16, activation="relu6"))
    first, second = walk(ModelSpec(g).arch(), 32)[1:3]
    a = Block(first, Norms())
    convs = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.groups) for c in a.modules()
             if isinstance(c, nn.Conv2d)]
    assert convs == [(16, 64, (5, 5), (2, 2), 1), (64, 4, (1, 1), (1, 1), 1), (4, 64, (1, 1), (1, 1), 1),
                     (64, 24, (1, 1), (1, 1), 1)]
    assert a.conv is None and isinstance(a.expand[2], nn.ReLU6) and isinstance(a.se.act, nn.ReLU6)
    assert not first.residual and second.residual and second.in_filters == 24
    assert sum(p.numel() for p in a.parameters()) == layer_cost(first)[0]


@pytest.mark.parametrize("seed", range(6))
def test_every_op_counts_equal_the_built_module(seed):
    rng = np.random.default_rng(seed)
    g = random_genotype(rng, blocks=7)
    assert {b.op for b in g.blocks} == set(OPS)
    spec = ModelSpec(g, width=float(rng.choice([0.5, 1.0, 1.3])), depth=float(rng.choice([0.5, 1.0, 1.6])),
                     resolution=int(rng.choice([17, 32])), num_classes=10)
    params, macs = count_spec(spec)
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == params
    assert measure_macs(model, spec.resolution) == macs
    assert model.eval()(torch.zeros(1, 3, spec.resolution, spec.resolution)).shape == (1, 10)


@pytest.mark.parametrize("name", shipped_spaces())
def test_counts_equal_the_built_module_for_random_genotypes_of_every_shipped_space(name):
    space = get_space(name)
    rng = np.random.default_rng(11)
    for _ in range(20):
        spec = ModelSpec(space.sample(rng), width=0.5, resolution=32, num_classes=10)
        model = build_model(spec)
        assert (sum(p.numel() for p in model.parameters()), measure_macs(model, 32)) == count_spec(spec)


@pytest.mark.parametrize("act, se_act", [("relu", None), ("hswish", "relu"), ("relu6", "silu"), ("silu", "hswish")])
def test_the_frames_activations_reach_every_layer(act, se_act):
    g = random_genotype(np.random.default_rng(3), blocks=7)
    g = g.with_frame(activation=act, se_activation=se_act)
    model = build_model(ModelSpec(g, resolution=32, num_classes=10))
    inner = {type(blk.se.act) for blk in model.blocks if blk.se is not None}
    outer = {type(m) for name, m in model.named_modules()
             if isinstance(m, tuple(ACT_TYPES.values())) and not name.endswith("se.act")}
    assert outer == {ACT_TYPES[act]}
    assert inner == {ACT_TYPES[se_act or act]}
    # ... and the latency keys: each layer with an activated conv carries the activation, linear ones none
    for spec in walk(ModelSpec(g).arch(), 32):
        assert spec.act in (act, "")
        assert spec.se_act == ((se_act or act) if spec.se > 0 else "")
        assert spec.key()[-2:] == (spec.act, spec.se_act)


def test_layers_without_effect_share_one_key():
    """nodw's kernel has no effect (always its 3x3 expansion); a lone projection has no activation."""
    base = BlockGene(op="nodw", kernel=3, stride=2, expand=1, filters=24, layers=1)
    keys = {walk(ModelSpec(Genotype((dataclasses.replace(base, kernel=k),), Frame(activation=a))).arch(), 64)[1]
            .key() for k in (3, 5) for a in ("silu", "relu")}
    assert len(keys) == 1 and next(iter(keys))[-2:] == ("", "")


def test_stem_stride_is_the_frames_unless_the_spec_overrides_it():
    g = macro_genotype("11111111")
    assert ModelSpec(g).arch().stem_stride == 1
    assert ModelSpec(g, stem_stride=2).arch().stem_stride == 2
    b0 = Genotype(g.blocks)  # the default frame: stride 2
    assert ModelSpec(b0).arch().stem_stride == 2 and ModelSpec(b0, stem_stride=1).arch().stem_stride == 1
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2, got 3"):
        ModelSpec(g, stem_stride=3).arch()


def test_an_identity_layer_has_no_block():
    spec = walk(ModelSpec(Genotype((BlockGene(op="skip", kernel=1, filters=32),))).arch(), 32)[1]
    assert spec.is_identity and spec.index == -1 and spec.act == ""
    with pytest.raises(ValueError, match="identity layer .* has no module"):
        Block(spec, Norms())
