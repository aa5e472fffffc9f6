"""The weight-sharing supernet: paths are genotypes, extraction is exact, counts are exact, no allocation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from efficientnet import count_spec, measure_macs, walk
from efficientnet.dynamic_ops import DynamicConv2d
from efficientnet.supernet import Supernet, largest_genotype, smallest_genotype
from search_spaces import DEFAULT_FRAME, BlockGene, Genotype, SearchSpace, get_space, named_genotype

QUICK = dict(width=0.25, depth=0.5, resolution=32, stem_stride=2, num_classes=10)  # the quickstart's proxy
TINY = dict(width=1.0, depth=1.0, resolution=32, stem_stride=1, num_classes=10)


def _genotypes(space: SearchSpace, n: int, seed: int = 0) -> list[Genotype]:
    rng = np.random.default_rng(seed)
    out = [space.sample(rng) for _ in range(n)] + [largest_genotype(space), smallest_genotype(space)]
    if space.name == "mnasnet":
        out += [named_genotype("b0"), in_space_frame(named_genotype("mnasnet-a1"))]
    return out


def in_space_frame(genotype: Genotype) -> Genotype:
    """mnasnet-a1 keeps TF's fixed 1280 head; the supernet's paths share the space's (scaled) frame."""
    return genotype.with_frame(**dataclasses.asdict(DEFAULT_FRAME))


def test_a_foreign_frame_is_rejected_naming_the_fix(quick_net):
    with pytest.raises(ValueError, match=r"frame: the supernet shares .*head_scaling=.fixed.*with_frame\(stem=32"):
        quick_net(torch.zeros(1, 3, 32, 32), named_genotype("mnasnet-a1"))


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


@pytest.mark.parametrize("space_name, size", [("tiny", TINY), ("mnasnet", QUICK)])
def test_paths_are_the_genotypes_walk(space_name, size):
    space = get_space(space_name)
    net = Supernet(space, **size)
    for g in _genotypes(space, 8):
        plan = net._plan(g)
        spec = net.spec(g)
        # the path's layers ARE the standalone walk of the genotype at the supernet's size
        assert [s for _, s in plan.layers] == walk(spec.arch(), spec.resolution)[1:-1]
        # and a block with n layers uses the first n positions of its maximum
        arch = spec.arch()
        used = [layer for layer, _ in plan.layers]
        pos = 0
        for stage, block in zip(arch.stages, net.layers):
            assert used[pos:pos + stage.layers] == list(block)[:stage.layers]
            pos += stage.layers
        assert net(torch.zeros(2, 3, 32, 32), g).shape == (2, 10)


def test_largest_path_uses_whole_tensors_and_extremes_are_in_space():
    space = get_space("mnasnet")
    net = Supernet(space, **QUICK)
    big, small = largest_genotype(space), smallest_genotype(space)
    assert space.contains(big) and space.contains(small)
    assert count_spec(net.spec(small))[1] < count_spec(net.spec(big))[1]
    for layer, spec in net._plan(big).layers:
        w = layer.mbconv
        assert spec.kernel == w.dw.max_kernel
        assert w.project.weight_for(spec.mid_filters, spec.out_filters, 1).shape == w.project.weight.shape
        assert w.dw.weight_for(spec.mid_filters, spec.mid_filters, spec.kernel).shape == w.dw.weight.shape
    # the sandwich's smallest path bounds the SHARED MBConv weights (expansion 3); sepconv has its own
    assert {b.expand for b in net.smallest().blocks} == {3} and net.largest() == big
    assert {b.expand for b in Supernet(space, share_sepconv=True, **QUICK).smallest().blocks} == {1}


def test_not_a_path_is_rejected_with_the_field():
    net = Supernet(get_space("tiny"), **TINY)
    bad = Genotype(tuple(b if i else BlockGene(kernel=7, filters=16) for i, b in
                         enumerate(largest_genotype(get_space("tiny")).blocks)))
    with pytest.raises(ValueError, match="block 1: kernel=7"):
        net(torch.zeros(1, 3, 32, 32), bad)
    odd = SearchSpace({"name": "odd", "stages": [{"stride": 1, "filters": 16, "op": "fused", "expand": 4}]})
    with pytest.raises(ValueError, match="op.*fused.*supported: mbconv, conv"):
        Supernet(odd, **TINY)


@pytest.mark.parametrize("kernel_transform, share_sepconv", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("space_name, size", [("tiny", TINY), ("mnasnet", QUICK)])
def test_extraction_is_exact(space_name, size, kernel_transform, share_sepconv):
    space = get_space(space_name)
    torch.manual_seed(1)
    net = _perturbed(Supernet(space, kernel_transform=kernel_transform, share_sepconv=share_sepconv, **size)).eval()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for g in _genotypes(space, 6, seed=3):
        model = net.extract(g).eval()
        with torch.no_grad():
            assert torch.equal(net(x, g), model(x)), g.to_string()
        # the standalone model is a copy: changing it leaves the supernet alone
        with torch.no_grad():
            model.classifier.weight.add_(1.0)
        assert not torch.equal(model.classifier.weight, net.classifier.weight)


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


@pytest.mark.parametrize("space_name, size", [("tiny", TINY), ("mnasnet", QUICK)])
def test_counts_of_the_extracted_path_are_the_analytical_counts(space_name, size):
    space = get_space(space_name)
    net = Supernet(space, **size)
    for g in _genotypes(space, 6, seed=4):
        spec = net.spec(g)
        params, macs = count_spec(spec)
        model = net.extract(g)
        assert sum(p.numel() for p in model.parameters()) == params
        assert measure_macs(model, spec.resolution) == macs


def test_choosing_paths_allocates_no_parameters():
    space = get_space("mnasnet")
    net = Supernet(space, **QUICK).train()
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
    layer, spec = net._plan(g).layers[-1]
    bn = net.layers[-1][0].weights_for(spec).project_bn
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
