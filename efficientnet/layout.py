"""The one walk over a network's layers.

``walk(arch, resolution)`` expands an :class:`ArchConfig` into the flat list of
layers the network is made of -- stem, every block layer, head -- each with its
channels, stride, residual flag, input/output feature-map size and activations
(a :class:`~efficientnet.layer.LayerSpec`, built by its op of ``efficientnet.ops``).
The module builder, the supernet's paths, the analytical params/MACs count and
the latency lookup table keys all consume this list, so they cannot drift apart.

Spatial sizes use "same" output sizes (``ceil(size / stride)``): both
PyTorch-symmetric padding of ``(k - 1) // 2`` and TF-"SAME" padding give them
for odd kernels.
"""

from __future__ import annotations

from functools import lru_cache

from .layer import LayerSpec
from .ops import op
from .stages import DEFAULT_RESOLUTION, ArchConfig, StageConfig

__all__ = ["LayerSpec", "head_layer", "stem_layer", "walk"]


def walk(arch: ArchConfig, resolution: int = DEFAULT_RESOLUTION) -> list[LayerSpec]:
    """Stem, every layer of every stage, and the head, in forward order.

    Identity layers (``skip`` with stride 1 and in == out) are in the list -- a supernet position
    and a latency table see every layer -- but they have no module, no cost and no
    stochastic-depth ``index`` (-1), so the builder leaves them out.
    """
    layers = [stem_layer(arch, resolution)]
    size = layers[0].out_size
    index = 0
    act, se_act = arch.activation, arch.se_act
    for stage in arch.stages:
        stage_layers = _stage_layers(stage, size, index, act, se_act)
        layers.extend(stage_layers)
        size = stage_layers[-1].out_size
        index += sum(1 for spec in stage_layers if spec.index >= 0)
    layers.append(head_layer(arch, size))
    return layers


def stem_layer(arch: ArchConfig, resolution: int) -> LayerSpec:
    """The first layer of the walk: a 3x3 conv from RGB at ``resolution`` with the arch's stem stride."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    return LayerSpec("stem", 3, arch.stem, kernel=3, stride=arch.stem_stride, in_size=resolution, index=-1,
                     act=arch.activation)


def head_layer(arch: ArchConfig, size: int) -> LayerSpec:
    """The last layer of the walk: a 1x1 conv to ``arch.head`` channels on a ``size`` feature map."""
    last = arch.stages[-1].out_filters if arch.stages else arch.stem
    return LayerSpec("head", last, arch.head, in_size=size, index=-1, act=arch.activation)


@lru_cache(maxsize=65536)
def _stage_layers(stage: StageConfig, size: int, index: int, act: str, se_act: str) -> tuple[LayerSpec, ...]:
    """The layers of one stage (cached: the walk runs for every candidate of a search), each built by its op."""
    kind = op(stage.op)
    out = []
    for i in range(stage.layers):
        cin = stage.in_filters if i == 0 else stage.out_filters
        stride = stage.stride if i == 0 else 1
        spec = kind.layer(cin, stage.out_filters, stage.kernel, stride, stage.expand, stage.se, stage.skip, size,
                          index, act, se_act)
        index += spec.index >= 0
        out.append(spec)
        size = spec.out_size
    return tuple(out)
