"""The weight-sharing supernet of any declared space: paths are genotypes, extraction is exact (outputs and
counts) for every shipped space and every op, no allocation, sandwich extremes, sharing options."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from efficientnet import ModelSpec, count_spec, measure_macs, network_key, walk
from efficientnet.blocks import ACTIVATIONS
from efficientnet.dynamic_ops import ACT_FUNCTIONS, DynamicConv2d
from efficientnet.supernet import Supernet, largest_genotype, smallest_genotype
from search_spaces import (DEFAULT_FRAME, BlockGene, Genotype, SearchSpace, get_space, load_space, named_genotype,
                           shipped_spaces)
from space_helpers import EVERY_OP, macro_genotype

QUICK = dict(width=0.25, depth=0.5, resolution=32, stem_stride=2, num_classes=10)  # the quickstart's proxy
TINY = dict(width=1.0, depth=1.0, resolution=32, stem_stride=1, num_classes=10)
#: The size each space is tested at (a shipped space not listed: width 0.5 at 32x32, the frame's stem stride).
SIZES = {"mnasnet": QUICK, "tiny": TINY, "nas-bench-macro": dict(resolution=32, num_classes=10),
         "every-op": dict(width=1.0, depth=1.0, resolution=32, num_classes=10)}
SPACES = [*shipped_spaces(), "every-op"]


def _space(name: str) -> SearchSpace:
    return load_space(EVERY_OP) if name == "every-op" else get_space(name)


def _size(name: str) -> dict:
    return SIZES.get(name, dict(width=0.5, resolution=32, num_classes=10))


def _genotypes(space: SearchSpace, n: int, seed: int = 0, **options) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    out = [space.sample(rng) for _ in range(n)] + [largest_genotype(space, **options),
                                                    smallest_genotype(space, **options)]
    if space.name == "mnasnet":
        out += [named_genotype("b0"), in_space_frame(named_genotype("mnasnet-a1"))]
    return out


def in_space_frame(genotype: Genotype) -> Genotype:
    """mnasnet-a1 keeps TF's fixed 1280 head and ReLU; the supernet's paths share the space's (scaled) frame."""
    return genotype.with_frame(**dataclasses.asdict(DEFAULT_FRAME))


def _perturbed(net: Supernet, seed: int = 0) -> Supernet:
    """Non-trivial BN statistics, affine pairs and kernel transforms, so that a wrong slice shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in net.batchnorms():
            bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) * 0.2 - 0.1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.copy_(torch.rand(bn.num_features, generator=g) * 0.2 - 0.1)
        for m in net.modules():
            if isinstance(m, DynamicConv2d) and m.transforms is not None:
                for p in m.transforms.values():
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net


@pytest.fixture(scope="module")
def quick_net() -> Supernet:
    torch.manual_seed(0)
    return _perturbed(Supernet(get_space("mnasnet"), **QUICK)).eval()


def test_the_functional_activations_are_the_modules():
    x = torch.linspace(-8, 8, 101)
    assert set(ACT_FUNCTIONS) == set(ACTIVATIONS)
    for name, fn in ACT_FUNCTIONS.items():
        assert torch.equal(fn(x), ACTIVATIONS[name]()(x.clone())), name


def _check_exact(net: Supernet, genotypes: list[Genotype], x: torch.Tensor) -> None:
    for g in genotypes:
        model = net.extract(g).eval()
        with torch.no_grad():
            assert torch.equal(net(x, g), model(x)), g.to_string()
        spec = net.spec(g)
        assert (sum(p.numel() for p in model.parameters()), measure_macs(model, spec.resolution)) == count_spec(spec)


@pytest.mark.parametrize("name", SPACES)
def test_extraction_is_exact_for_20_random_genotypes_of_every_space(name):
    """``extract(g)`` gives the path's outputs bit for bit (eval mode, perturbed BN) and the analytic counts."""
    space = _space(name)
    torch.manual_seed(1)
    net = _perturbed(Supernet(space, **_size(name))).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    _check_exact(net, _genotypes(space, 20, seed=3), x)


@pytest.mark.parametrize("options", [{"kernel_transform": True}, {"share_sepconv": True},
                                     {"separate": ("expand", "kernel")}, {"separate": ("kernel",)}],
                         ids=["kernel_transform", "share_sepconv", "separate", "separate_kernel"])
@pytest.mark.parametrize("name", ["every-op", "mnasnet"])
def test_extraction_is_exact_with_every_sharing_option(name, options):
    space = _space(name)
    torch.manual_seed(1)
    net = _perturbed(Supernet(space, **options, **_size(name))).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    _check_exact(net, _genotypes(space, 6, seed=4, share_sepconv=options.get("share_sepconv", False),
                                 separate=options.get("separate", ())), x)


@pytest.mark.parametrize("name", ["tiny", "every-op", "nas-bench-macro"])
def test_paths_are_the_genotypes_walk(name):
    space = _space(name)
    net = Supernet(space, **_size(name))
    for g in _genotypes(space, 8):
        plan = net._plan(g)
        spec = net.spec(g)
        # the path's layers ARE the standalone walk of the genotype at the supernet's size, identities left out
        assert [s for _, s in plan.exports] == [s for s in walk(spec.arch(), spec.resolution)[1:-1]
                                                if not s.is_identity]
        # and a block with n layers uses the first n positions of its maximum
        used = {id(w) for w, _ in plan.exports}
        allowed = {id(w) for stage, block in zip(spec.arch().stages, net.layers)
                   for layer in list(block)[:stage.layers] for w in layer.groups.values()}
        assert used <= allowed
        assert net(torch.zeros(2, 3, 32, 32), g).shape == (2, 10)


def test_weight_groups_per_op_and_the_separate_option():
    """NAS-Bench-Macro: MB3_K3 is a slice of MB6_K5's weights (one ``mbconv`` group); ``skip`` has its own
    strided 1x1 conv where a stage starts and nothing elsewhere; ``separate`` gives each option its own."""
    space = get_space("nas-bench-macro")
    shared = Supernet(space, **_size("nas-bench-macro"))
    assert [sorted(block[0].groups) for block in shared.layers] == [["mbconv", "skip"], ["mbconv"]] * 1 + [
        ["mbconv", "skip"], ["mbconv"], ["mbconv"], ["mbconv", "skip"], ["mbconv"], ["mbconv"]]
    first = shared.layers[0][0].groups
    skip = first["skip"].convs[0]
    assert (skip.in_channels, skip.out_channels, skip.kernel_size, skip.stride) == (32, 64, (1, 1), (2, 2))
    dw = first["mbconv"].convs[1]
    assert dw.weight.shape == (32 * 6, 1, 5, 5) and dw.groups == 32 * 6
    split = Supernet(space, separate=("expand", "kernel"), **_size("nas-bench-macro"))
    assert sorted(split.layers[1][0].groups) == ["mbconv_e3_k3", "mbconv_e6_k5"]
    assert split.layers[1][0].groups["mbconv_e3_k3"].convs[1].weight.shape == (64 * 3, 1, 3, 3)
    # each of the 3,969 networks is one path; a path of the key's genotype runs on its groups
    g = macro_genotype("12" "021" "200")
    assert space.contains(g) and len(split._plan(g).layers) == 6


def test_the_frames_activation_runs_everywhere():
    """NAS-Bench-Macro is ReLU: the supernet path and its extracted model (ReLU modules) agree."""
    space = get_space("nas-bench-macro")
    net = Supernet(space, **_size("nas-bench-macro")).eval()
    model = net.extract(macro_genotype("22222222"))
    acts = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.SiLU, nn.ReLU6, nn.Hardswish))}
    assert acts == {nn.ReLU} and model.stem[0].stride == (1, 1)


def test_sandwich_extremes_of_the_shared_weights():
    mnas = get_space("mnasnet")
    net = Supernet(mnas, **QUICK)
    big, small = net.largest(), net.smallest()
    assert mnas.contains(big) and mnas.contains(small)
    assert count_spec(net.spec(small))[1] < count_spec(net.spec(big))[1]
    # MnasNet: the largest MBConv (e6 k5 SE, most filters and layers, skip on); the smallest of the SHARED MBConv
    # weights is expansion 3 (sepconv has its own), expansion 1 when sepconv shares them
    assert {(b.op, b.expand, b.kernel, b.se, b.skip) for b in big.blocks} == {("mbconv", 6, 5, 0.25, True)}
    assert {(b.op, b.expand, b.kernel, b.se, b.skip) for b in small.blocks} == {("mbconv", 3, 3, 0.0, True)}
    # (at width 0.25 filters 8, 16 and 24 all build 8 channels: a tie, broken by the declaration's order)
    assert [b.filters for b in largest_genotype(mnas).blocks] == [max(p.values("filters")) for p in mnas.positions]
    assert [b.layers for b in smallest_genotype(mnas).blocks] == [min(p.values("layers")) for p in mnas.positions]
    assert {b.expand for b in Supernet(mnas, share_sepconv=True, **QUICK).smallest().blocks} == {1}
    steps = [step for _, layer_steps, _ in net._plan(big).layers for step in layer_steps if step.bn is not None]
    assert len(steps) == 3 * sum(b.layers for b in net.spec(big).arch().stages)  # expand, depthwise, project
    for step in steps:  # the largest path uses whole tensors: every out channel, the largest kernel
        assert (step.cout, step.kernel) == (step.module.out_channels, step.module.max_kernel)
    # NAS-Bench-Macro: all MB6_K5 / all MB3_K3; with separate weights per option the main group is one option
    macro = get_space("nas-bench-macro")
    assert "".join(map(str, macro.encode(largest_genotype(macro)))) == "22222222"
    assert "".join(map(str, macro.encode(smallest_genotype(macro)))) == "11111111"
    assert smallest_genotype(macro, separate=("expand", "kernel")) == largest_genotype(macro)
    # any space: both are points of it and the smallest is no costlier
    every = load_space(EVERY_OP)
    big, small = largest_genotype(every), smallest_genotype(every)
    assert every.contains(big) and every.contains(small)
    assert count_spec(ModelSpec(small))[1] < count_spec(ModelSpec(big))[1]


def test_not_a_path_is_rejected_with_the_field(quick_net):
    net = Supernet(get_space("tiny"), **TINY)
    bad = Genotype(tuple(b if i else BlockGene(kernel=7, filters=16) for i, b in
                         enumerate(largest_genotype(get_space("tiny")).blocks)))
    with pytest.raises(ValueError, match="block 1"):
        net(torch.zeros(1, 3, 32, 32), bad)
    with pytest.raises(ValueError, match=r"frame: the supernet shares .*head_scaling=.fixed.*with_frame\(stem=32"):
        quick_net(torch.zeros(1, 3, 32, 32), named_genotype("mnasnet-a1").with_frame(activation="silu"))
    with pytest.raises(ValueError, match=r"separate must list distinct fields of expand, kernel, got \['se'\]"):
        Supernet(get_space("tiny"), separate=("se",), **TINY)


def test_extraction_keeps_train_mode_and_gradients_match(quick_net):
    g = named_genotype("b0")
    net = quick_net
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model = net.extract(g).train()
    net.train()
    try:
        state = {k: v.clone() for k, v in net.state_dict().items()}
        net(x, g).sum().backward()
        model(x).sum().backward()
        # the classifier gradient of the path equals the standalone's (same activations in train mode)
        torch.testing.assert_close(net.classifier.weight.grad, model.classifier.weight.grad, rtol=1e-5, atol=1e-6)
        net.load_state_dict(state)
    finally:
        net.zero_grad(set_to_none=True)
        net.eval()


@pytest.mark.parametrize("name, options", [("mnasnet", {}), ("every-op", {"kernel_transform": True}),
                                           ("nas-bench-macro", {"separate": ("expand", "kernel")})])
def test_choosing_paths_allocates_no_parameters(name, options):
    space = _space(name)
    net = Supernet(space, **options, **_size(name)).train()
    before = [(n, p.data_ptr(), p.shape) for n, p in net.named_parameters()]
    buffers = [(n, b.data_ptr(), b.shape) for n, b in net.named_buffers()]
    x = torch.randn(4, 3, 32, 32)
    for g in _genotypes(space, 10, seed=5):
        net(x, g).sum().backward()
    assert [(n, p.data_ptr(), p.shape) for n, p in net.named_parameters()] == before
    assert [(n, b.data_ptr(), b.shape) for n, b in net.named_buffers()] == buffers
    # gradients of every path land in the shared (largest) tensors
    for _, p in net.named_parameters():
        assert p.grad is None or p.grad.shape == p.shape


def test_recalibration_changes_bn_statistics_and_nothing_else(quick_net):
    net = quick_net
    g = in_space_frame(named_genotype("mnasnet-a1"))
    gen = torch.Generator().manual_seed(7)
    batches = [torch.randn(16, 3, 32, 32, generator=gen) for _ in range(3)]
    params = {n: p.detach().clone() for n, p in net.named_parameters()}
    bn_names = {n for n, m in net.named_modules() if isinstance(m, nn.BatchNorm2d)}
    buffers = {n: b.clone() for n, b in net.named_buffers()}
    net.recalibrate(g, batches)
    assert not net.training  # the mode is restored
    for n, p in net.named_parameters():
        assert torch.equal(p, params[n]), n
    changed = [n for n, b in net.named_buffers() if not torch.equal(b, buffers[n])]
    assert changed and all(n.rsplit(".", 1)[0] in bn_names for n in changed)
    # the momentum each BN had is back
    assert {bn.momentum for bn in net.batchnorms()} == {0.1}
    # the statistics are those of the path: the cumulative mean of the per-batch statistics
    model = net.extract(g)
    first_bn = model.stem[1]
    with torch.no_grad():
        feats = [model.stem[0](x) for x in batches]
    mean = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(first_bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(first_bn.running_var, var, rtol=1e-4, atol=1e-5)
    # channels the path does not use keep their statistics
    weights, spec = net._plan(g).exports[-1]
    bn = weights.bns[-1]  # the last layer's projection BN
    unused = bn.running_mean[spec.out_filters:]
    key = [n for n, b in net.named_buffers() if b is bn.running_mean][0]
    assert unused.numel() > 0 and torch.equal(unused, buffers[key][spec.out_filters:])
    # recalibration is a function of the batches only: a second call gives the same statistics
    first = {n: b.clone() for n, b in net.named_buffers()}
    net.recalibrate(g, batches)
    for n, b in net.named_buffers():
        if not n.endswith("num_batches_tracked"):
            torch.testing.assert_close(b, first[n], rtol=1e-5, atol=1e-6)


def test_zero_init_leaves_every_path_trainable():
    """A zeroed classifier is fine; a zeroed shared projection BN would cut the noskip paths (no gradient
    reaches the layers before it).  After one step every path's stem gets a gradient."""
    space = get_space("tiny")
    torch.manual_seed(0)
    net = Supernet(space, **TINY)
    net.zero_init()
    assert not net.classifier.weight.any()
    noskip = Genotype(tuple(BlockGene(op="mbconv", kernel=3, stride=p.stride, expand=6, se=0.25, skip=False,
                                      filters=max(p.values("filters")), layers=max(p.values("layers")))
                            for p in space.positions))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    for g in (noskip, largest_genotype(space)):
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(net.train()(x, g), y).backward()
            opt.step()
        assert net.stem[0].weight.grad.abs().sum() > 0, g.to_string()


def test_network_key_of_a_scaled_spec_merges_rounding_aliases():
    """At the quickstart proxy's depth 0.5, a block of 1 and one of 2 layers both build 1 layer (ceil): one
    network, one key; at depth 1.0 two networks.  Width rounding alike (16 and 24 filters at width 0.25 -> 8)."""
    b0 = named_genotype("b0")
    two = Genotype((dataclasses.replace(b0.blocks[0], layers=2),) + b0.blocks[1:])
    assert network_key(ModelSpec(b0, **QUICK)) == network_key(ModelSpec(two, **QUICK))
    assert network_key(ModelSpec(b0)) != network_key(ModelSpec(two))
    wide = Genotype((dataclasses.replace(b0.blocks[0], filters=24),) + b0.blocks[1:])
    assert network_key(ModelSpec(b0, width=0.25)) == network_key(ModelSpec(wide, width=0.25))
    assert network_key(ModelSpec(b0, width=0.5)) != network_key(ModelSpec(wide, width=0.5))
    # NAS-Bench-Macro's identity moves are aliases at any size
    assert network_key(ModelSpec(macro_genotype("20102100"))) == network_key(ModelSpec(macro_genotype("20120100")))
