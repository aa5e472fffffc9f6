"""The one walk over a network's layers.

``walk(arch, resolution)`` expands an :class:`ArchConfig` into the flat list of
layers the network is made of -- stem, every block layer, head -- each with its
channels, stride, residual flag and input/output feature-map size.  The
module builder, the analytical params/MACs count and the latency lookup table
keys all consume this list, so they cannot drift apart.

Spatial sizes use "same" output sizes (``ceil(size / stride)``): both
PyTorch-symmetric padding of ``(k - 1) // 2`` and TF-"SAME" padding give them
for odd kernels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from .stages import DEFAULT_RESOLUTION, ArchConfig, StageConfig


_EXPANDING = frozenset(("mbconv", "irpw", "nodw"))


class LayerSpec(NamedTuple):
    """One layer of the network.  ``kind``: stem, head, or a block op (mbconv, conv, nodw, irpw).

    The block ops are those of ``search_spaces.genes``: ``nodw`` is TF's
    MBConvBlockWithoutDepthwise (its ``kernel`` is always 3 here, the width of
    its expansion conv, whatever the genotype wrote), ``irpw`` timm's expand-1
    InvertedResidual (a 1x1 conv in -> in before the depthwise conv).

    A NamedTuple rather than a dataclass: the walk runs for every candidate a
    controller proposes, and tuples are created and hashed in C.
    """

    kind: str
    in_filters: int
    out_filters: int
    kernel: int = 1
    stride: int = 1
    expand: int = 1
    se: float = 0.0
    residual: bool = False
    in_size: int = 0
    index: int = 0  # position among the block layers (for stochastic depth); -1 for stem/head

    @property
    def out_size(self) -> int:
        return -(-self.in_size // self.stride)

    @property
    def mid_filters(self) -> int:
        """Channels after expansion (the depthwise width) for mbconv/irpw/nodw; out channels for conv."""
        return self.in_filters * self.expand if self.kind in _EXPANDING else self.out_filters

    @property
    def se_filters(self) -> int:
        """Squeeze channels of the SE module: ``max(1, int(in * ratio))`` as in the reference."""
        return max(1, int(self.in_filters * self.se)) if self.se > 0 else 0

    def key(self) -> tuple:
        """What determines this layer's cost on a device (the latency-table key)."""
        return (self.kind, self.in_filters, self.out_filters, self.kernel, self.stride, self.expand, self.se,
                self.residual, self.in_size)


def walk(arch: ArchConfig, resolution: int = DEFAULT_RESOLUTION) -> list[LayerSpec]:
    """Stem, every layer of every stage, and the head, in forward order."""
    layers = [stem_layer(arch, resolution)]
    size = layers[0].out_size
    index = 0
    for stage in arch.stages:
        stage_layers = _stage_layers(stage, size, index)
        layers.extend(stage_layers)
        size = stage_layers[-1].out_size
        index += stage.layers
    layers.append(head_layer(arch, size))
    return layers


def stem_layer(arch: ArchConfig, resolution: int) -> LayerSpec:
    """The first layer of the walk: a 3x3 conv from RGB at ``resolution``."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    return LayerSpec("stem", 3, arch.stem, kernel=3, stride=arch.stem_stride, in_size=resolution, index=-1)


def head_layer(arch: ArchConfig, size: int) -> LayerSpec:
    """The last layer of the walk: a 1x1 conv to ``arch.head`` channels on a ``size`` feature map."""
    last = arch.stages[-1].out_filters if arch.stages else arch.stem
    return LayerSpec("head", last, arch.head, in_size=size, index=-1)


@lru_cache(maxsize=65536)
def _stage_layers(stage: StageConfig, size: int, index: int) -> tuple[LayerSpec, ...]:
    """The layers of one stage (cached: the walk runs for every candidate of a search)."""
    out = []
    for i in range(stage.layers):
        cin = stage.in_filters if i == 0 else stage.out_filters
        stride = stage.stride if i == 0 else 1
        residual = stage.skip and stride == 1 and cin == stage.out_filters
        spec = LayerSpec(stage.op, cin, stage.out_filters, kernel=3 if stage.op == "nodw" else stage.kernel,
                         stride=stride,
                         expand=stage.expand, se=stage.se, residual=residual, in_size=size, index=index + i)
        out.append(spec)
        size = spec.out_size
    return tuple(out)
