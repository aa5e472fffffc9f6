"""Exported timm strings built in timm itself: the same network (params, MACs, and outputs with copied weights).

Runs only where timm is importable (timm needs torchvision, which this project's CPU environment does not
install); elsewhere the whole module is skipped with that reason.  The exported arch string goes through
timm's own ``decode_arch_def`` and ``EfficientNet`` with the genotype's ``timm_kwargs()``.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

timm_efficientnet = pytest.importorskip(
    "timm.models.efficientnet", reason="timm is not importable here (it needs torchvision, not installed beside "
                                       "this torch); the exported strings are checked in timm where it is")
from timm.models._efficientnet_builder import decode_arch_def  # noqa: E402

from efficientnet import build_model, count_spec, measure_macs, model_spec  # noqa: E402
from search_spaces import get_space, named_genotype  # noqa: E402

N_RANDOM = 30


def _timm_model(genotype, num_classes: int = 1000) -> nn.Module:
    kwargs = genotype.timm_kwargs()
    return timm_efficientnet.EfficientNet(
        block_args=decode_arch_def(genotype.to_timm_arch_def()), num_classes=num_classes,
        stem_size=kwargs["stem_size"], fix_stem=kwargs["fix_stem"], num_features=kwargs["num_features"],
        act_layer=kwargs["act_layer"], norm_layer=partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01))


def _ours(genotype, resolution: int, num_classes: int = 1000) -> nn.Module:
    spec = model_spec(genotype, resolution=resolution, num_classes=num_classes)
    return build_model(spec, bn_eps=1e-3, bn_momentum=0.01, dropout=0.0, drop_connect_rate=0.0)


def _exportable_random(n: int) -> list:
    space, rng, out = get_space("mnasnet"), np.random.default_rng(12), []
    while len(out) < n:
        g = space.sample(rng)
        try:
            g.to_timm()
        except ValueError:
            continue
        out.append(g)
    return out


def _copy_by_position(src: nn.Module, dst: nn.Module) -> None:
    theirs = [(k, v) for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")]
    mine = [(k, v) for k, v in dst.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(theirs) == len(mine)
    new = dict(dst.state_dict())
    for (key, target), (_, tensor) in zip(mine, theirs):
        assert target.shape == tensor.shape, key
        new[key] = tensor.clone()
    dst.load_state_dict(new)


CASES = [("b0", named_genotype("b0"), 224), ("mnasnet-a1", named_genotype("mnasnet-a1"), 224)] + [
    (f"random{i}", g, 64) for i, g in enumerate(_exportable_random(N_RANDOM))]


@pytest.mark.parametrize("name, genotype, resolution", CASES, ids=[c[0] for c in CASES])
def test_timm_builds_the_same_network(name, genotype, resolution):
    theirs = _timm_model(genotype)
    params, macs = count_spec(model_spec(genotype, resolution=resolution))
    assert sum(p.numel() for p in theirs.parameters()) == params
    assert measure_macs(theirs, resolution) == macs


@pytest.mark.parametrize("name, genotype, resolution", CASES[:5], ids=[c[0] for c in CASES[:5]])
def test_outputs_equal_after_copying_weights(name, genotype, resolution):
    torch.manual_seed(0)
    theirs, ours = _timm_model(genotype, 10).eval(), _ours(genotype, 64, 10).eval()
    _copy_by_position(theirs, ours)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)
