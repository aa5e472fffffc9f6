"""One layer of a network as a value: :class:`LayerSpec`.

The layer walk (``layout.walk``) makes one per layer -- stem, every block layer, head -- with
everything that determines the layer's module, its cost and its time on a device: op, channels,
kernel, stride, expansion, SE ratio, residual flag, input size and activations.  The walk
builds each block layer through its op (``ops.OPS[kind].layer``), which pins the fields that
have no effect for that op (e.g. ``nodw``'s kernel, a ``skip`` layer's activation), so two
layers with the same effect are the same value: one latency-table key, one cache entry.

A NamedTuple rather than a dataclass: the walk runs for every candidate a controller proposes,
and tuples are created and hashed in C.
"""

from __future__ import annotations

from typing import NamedTuple

from search_spaces.genes import DEFAULT_FRAME
from search_spaces.ops import OPS

_EXPANDING = frozenset(name for name, facts in OPS.items() if facts.expanding)
#: The activation of a layer that has none (a lone projection), and the SE activation of a layer without SE.
NO_ACT = ""


class LayerSpec(NamedTuple):
    """One layer.  ``kind``: ``stem``, ``head``, or a block op of ``search_spaces.ops`` (mbconv, nodw, conv,
    irpw, fused, skip).

    ``nodw`` is TF's MBConvBlockWithoutDepthwise (its ``kernel`` is always 3 here, the width of its
    expansion conv, whatever the genotype wrote), ``irpw`` timm's expand-1 InvertedResidual (a 1x1
    conv in -> in before the depthwise conv), ``fused`` timm's EdgeResidual, ``skip`` an absent
    layer (:attr:`is_identity`) or, where stride or channels change, a strided 1x1 conv + BN.
    ``act`` is the activation after every conv but the projections, ``se_act`` the one inside
    squeeze-excite (:data:`NO_ACT` where the layer has none).  ``index`` is the layer's position
    among the block layers that are not identities (stochastic depth); -1 for stem, head and
    identity layers.
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
    index: int = 0
    act: str = DEFAULT_FRAME.activation
    se_act: str = NO_ACT

    @property
    def out_size(self) -> int:
        return -(-self.in_size // self.stride)

    @property
    def mid_filters(self) -> int:
        """Channels after expansion for the expanding ops (mbconv, irpw, nodw, fused, skip); out channels for
        conv, stem and head."""
        return self.in_filters * self.expand if self.kind in _EXPANDING else self.out_filters

    @property
    def se_filters(self) -> int:
        """Squeeze channels of the SE module: ``max(1, int(in * ratio))`` as in the reference."""
        return max(1, int(self.in_filters * self.se)) if self.se > 0 else 0

    @property
    def is_identity(self) -> bool:
        """A ``skip`` layer where nothing changes: no module, no cost, no stochastic-depth index."""
        return self.kind == "skip" and self.stride == 1 and self.in_filters == self.out_filters

    def key(self) -> tuple:
        """What determines this layer's cost on a device (the latency-table key): every field but ``index``."""
        return (self.kind, self.in_filters, self.out_filters, self.kernel, self.stride, self.expand, self.se,
                self.residual, self.in_size, self.act, self.se_act)
