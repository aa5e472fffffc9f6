"""Analytical parameter and multiply-add counts from the layer walk.

Convention (torchvision's model metadata, the paper's "FLOPs"): multiply-adds
of convolutions and linear layers, squeeze-excite included; BatchNorm,
activations, pooling, residual adds and biases are not counted.  Parameters
are exact: every weight, bias and BatchNorm affine pair.

``measure_macs`` is an independent hook-based count on a built module, used
by the tests to cross-check the analytical numbers.
"""

from __future__ import annotations

from functools import lru_cache

from search_spaces.genes import DEFAULT_FRAME

from .layer import LayerSpec
from .layout import _stage_layers, head_layer, stem_layer
from .ops import conv_cost, layer_convs, op
from .stages import NUM_CLASSES


@lru_cache(maxsize=65536)
def layer_cost(spec: LayerSpec) -> tuple[int, int]:
    """(params, MACs) of one layer, BatchNorm included in params: its op's count (``ops.TorchOp.cost``)."""
    if spec.kind in ("stem", "head"):
        return conv_cost(layer_convs(spec)[0])
    return op(spec.kind).cost(spec)


def classifier_cost(in_features: int, num_classes: int) -> tuple[int, int]:
    return in_features * num_classes + num_classes, in_features * num_classes


def count(layers: list[LayerSpec], num_classes: int = NUM_CLASSES) -> tuple[int, int]:
    """(params, MACs) of a whole network from its layer walk."""
    params = macs = 0
    for spec in layers:
        p, m = layer_cost(spec)
        params += p
        macs += m
    if num_classes:
        p, m = classifier_cost(layers[-1].out_filters, num_classes)
        params += p
        macs += m
    return params, macs


def measure_macs(module, resolution: int, in_channels: int = 3) -> int:
    """Multiply-adds of ``module`` on one image, counted by forward hooks on Conv2d and Linear."""
    import torch
    from torch import nn

    total = 0

    def conv_hook(mod: nn.Conv2d, _inp, out) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += out.shape[1] * out.shape[2] * out.shape[3] * (mod.in_channels // mod.groups) * k

    def linear_hook(mod: nn.Linear, _inp, out) -> None:
        nonlocal total
        total += mod.in_features * mod.out_features

    handles = []
    for mod in module.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            handles.append(mod.register_forward_hook(linear_hook))
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, in_channels, resolution, resolution))
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return total


@lru_cache(maxsize=65536)
def _stage_cost(stage, size: int) -> tuple[int, int, int]:
    """(params, MACs, output size) of one stage, from the same walk as the builder."""
    params = macs = 0
    layers = _stage_layers(stage, size, 0, DEFAULT_FRAME.activation, DEFAULT_FRAME.activation)  # cost: any act
    for spec in layers:
        p, m = layer_cost(spec)
        params += p
        macs += m
    return params, macs, layers[-1].out_size


def count_arch(arch, resolution: int, num_classes: int = NUM_CLASSES) -> tuple[int, int]:
    """(params, MACs) of an ``ArchConfig`` at ``resolution``; equal to ``count(walk(arch, resolution))``.

    The walk's own pieces (``stem_layer``, the cached ``_stage_layers``, ``head_layer``), with
    per-stage costs cached by (stage, input size): a search filters thousands of candidates that
    share most of their stages.
    """
    stem = stem_layer(arch, resolution)
    params, macs = layer_cost(stem)
    size = stem.out_size
    for stage in arch.stages:
        p, m, size = _stage_cost(stage, size)
        params += p
        macs += m
    p, m = layer_cost(head_layer(arch, size))
    params += p
    macs += m
    if num_classes:
        p, m = classifier_cost(arch.head, num_classes)
        params += p
        macs += m
    return params, macs
