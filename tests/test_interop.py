"""Weight interop: lukemelas' EfficientNet-PyTorch and torchvision's efficientnet_bN give our models'
logits exactly (fp32, eval mode, max abs diff <= 1e-4).

Random weights only, no downloads.  PyTorch's default init makes the activations of these deep
networks vanish (every logit is then the classifier bias, and any two models "agree"), so the
source model first gets He-normal convs, random BatchNorm affines and BatchNorm statistics
calibrated on one random batch: the logits are then O(0.3) and depend on every layer.

To keep the CPU time low, B0..B3 run at their own resolution and B4..B7 at 64x64 (their
lukemelas models are built for 64x64, so TF-"SAME" padding is computed for that size).
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from torch import nn

from efficientnet import create_model
from efficientnet.interop import (LUKEMELAS_BUILD, TORCHVISION_BUILD, from_lukemelas, from_torchvision,
                                  genotype_from_lukemelas, load_lukemelas_state_dict, load_torchvision_state_dict,
                                  spec_from_lukemelas, torchvision_build)
from search_spaces import named_genotype

LM = pytest.importorskip("efficientnet_pytorch", reason="efficientnet-pytorch (a test extra) is not installed").EfficientNet

TOL = 1e-4
#: (model index, test resolution, calibration batch): small maps need a bigger batch for stable statistics.
CASES = [(0, 224, 2), (1, 240, 2), (2, 260, 2), (3, 300, 2), (4, 64, 8), (5, 64, 8), (6, 64, 8), (7, 64, 8)]


def _randomize_and_calibrate(model: nn.Module, x: torch.Tensor, gen: torch.Generator) -> nn.Module:
    """He-normal convs, random BatchNorm affines, BatchNorm statistics of ``x``; returns ``model`` in eval mode."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.out_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.reset_running_stats()
                m.momentum = None  # cumulative average: after one batch, the running stats are that batch's
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features), generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
        model.train()(x)
    return model.eval()


def _lukemelas(index: int, resolution: int, calib: int) -> tuple[nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(index)
    # dropout and drop connect off so the calibration pass in train mode uses no global RNG
    lm = LM.from_name(f"efficientnet-b{index}", image_size=resolution, dropout_rate=0.0, drop_connect_rate=0.0)
    x = torch.randn(calib, 3, resolution, resolution, generator=gen)
    return _randomize_and_calibrate(lm, x, gen), x[:2]


@pytest.mark.parametrize("index, resolution, calib", CASES, ids=[f"b{c[0]}@{c[1]}" for c in CASES])
def test_lukemelas_logits(index, resolution, calib):
    lm, x = _lukemelas(index, resolution, calib)
    ours = from_lukemelas(lm).eval()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in lm.parameters())
    with torch.no_grad():
        expected, got = lm(x), ours(x)
    assert expected.std() > 0.1  # the check is meaningful: the logits are not just the classifier bias
    assert (expected - got).abs().max().item() <= TOL


def test_symmetric_padding_changes_lukemelas_logits():
    """Without TF-"SAME" padding the same weights give other logits (the stride-2 grids shift by a pixel)."""
    lm, x = _lukemelas(0, 224, 2)
    model = create_model("efficientnet-b0", same_padding=False, bn_eps=1e-3)
    with pytest.raises(ValueError, match="same_padding=True"):
        load_lukemelas_state_dict(model, lm.state_dict())
    load_lukemelas_state_dict(model, lm.state_dict(), check_build=False)
    with torch.no_grad():
        diff = (lm(x) - model.eval()(x)).abs().max().item()
    assert diff > 1e-2  # measured about 0.25-1.8 (logit std about 0.27)


def test_load_into_prebuilt_model_and_checks():
    lm = LM.from_name("efficientnet-b0", num_classes=10, image_size=32)
    sd = lm.state_dict()
    model = create_model("efficientnet-b0", num_classes=10, **LUKEMELAS_BUILD)
    load_lukemelas_state_dict(model, sd)
    assert torch.equal(model.stem[0].weight, sd["_conv_stem.weight"])
    assert torch.equal(model.blocks[15].project[1].running_var, sd["_blocks.15._bn2.running_var"])
    assert torch.equal(model.classifier.weight, sd["_fc.weight"])
    # keys are not used: a DataParallel prefix or a dict without BatchNorm counters loads too
    stripped = {f"module.{k}": v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    load_lukemelas_state_dict(create_model("efficientnet-b0", num_classes=10, **LUKEMELAS_BUILD), stripped)
    # wrong eps
    with pytest.raises(ValueError, match="eps"):
        load_lukemelas_state_dict(create_model("efficientnet-b0", num_classes=10, same_padding=True, bn_eps=1e-5), sd)
    # another architecture: the tensor count or a shape differs, and the message names the tensors
    with pytest.raises(ValueError, match="tensors"):
        load_lukemelas_state_dict(create_model("efficientnet-b1", num_classes=10, **LUKEMELAS_BUILD), sd)
    with pytest.raises(ValueError, match=r"_fc.weight.*classifier.weight"):
        load_lukemelas_state_dict(create_model("efficientnet-b0", num_classes=5, **LUKEMELAS_BUILD), sd)
    wider = LM.from_name("efficientnet-b0", num_classes=10, image_size=32, width_coefficient=1.2).state_dict()
    with pytest.raises(ValueError, match=r"_conv_stem.weight' \(40, 3, 3, 3\).*\(32, 3, 3, 3\)"):
        load_lukemelas_state_dict(create_model("efficientnet-b0", num_classes=10, **LUKEMELAS_BUILD), wider)


def test_spec_from_lukemelas():
    lm = LM.from_name("efficientnet-b3", image_size=64)
    spec = spec_from_lukemelas(lm)
    assert spec.genotype == named_genotype("b0")
    assert (spec.width, spec.depth, spec.resolution, spec.dropout, spec.num_classes) == (1.2, 1.4, 64, 0.3, 1000)
    assert genotype_from_lukemelas(lm._blocks_args) == named_genotype("b0")


def _torchvision_or_skip():
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed (it is not a dependency; install it to run this check)")
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # e.g. a CUDA torchvision build over a CPU torch
        pytest.skip(f"torchvision is installed but cannot be imported: {err}")
    import torchvision.models as tvm

    return tvm


@pytest.mark.parametrize("index, resolution, calib", CASES, ids=[f"b{c[0]}@{c[1]}" for c in CASES])
def test_torchvision_logits(index, resolution, calib):
    tvm = _torchvision_or_skip()
    gen = torch.Generator().manual_seed(index)
    tv = getattr(tvm, f"efficientnet_b{index}")(weights=None)
    x = torch.randn(calib, 3, resolution, resolution, generator=gen)
    tv = _randomize_and_calibrate(tv, x, gen)
    name = f"efficientnet-b{index}"
    build = torchvision_build(name)  # B5..B7: TF BatchNorm eps 1e-3 in torchvision too
    ours = create_model(name, **build)
    load_torchvision_state_dict(ours, tv.state_dict(), bn_eps=build["bn_eps"])
    converted = from_torchvision(tv)
    with torch.no_grad():
        expected, got, got2 = tv(x[:2]), ours.eval()(x[:2]), converted(x[:2])
    assert expected.std() > 0.1
    assert (expected - got).abs().max().item() <= TOL
    assert torch.equal(got, got2)


def test_torchvision_loader_checks_build():
    # runs without torchvision: the build check comes before any tensor is read
    with pytest.raises(ValueError, match="eps=1e-05"):
        load_torchvision_state_dict(create_model("efficientnet-b0"), {})
    with pytest.raises(ValueError, match="same_padding=False"):
        load_torchvision_state_dict(create_model("efficientnet-b0", same_padding=True, bn_eps=1e-5), {})
    with pytest.raises(ValueError, match="tensors"):
        load_torchvision_state_dict(create_model("efficientnet-b0", **TORCHVISION_BUILD), {})
    assert torchvision_build("efficientnet-b0") == TORCHVISION_BUILD
    assert torchvision_build("efficientnet-b7")["bn_eps"] == 1e-3
    with pytest.raises(ValueError, match="efficientnet-b8"):
        torchvision_build("efficientnet-b8")
