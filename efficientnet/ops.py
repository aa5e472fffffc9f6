"""The op registry, network side: each block op of ``search_spaces.OPS`` defined once, by its convolutions.

An op is written down here exactly once, as the list of convolutions a layer of it is made of
(:meth:`TorchOp.convs`: slot, in/out channels, kernel, stride, depthwise or not, activation or
not, input size), with squeeze-excite -- when the layer has it -- on the output of its last
convolution before the projection.  Everything else about the op is derived from that list,
by one function each, so none of them can drift from another:

* its **layer** (:meth:`TorchOp.layer`): the walk's :class:`LayerSpec`, with the fields that have
  no effect pinned (``nodw``'s kernel is always its 3x3 expansion's, a layer without an
  activated conv has activation :data:`NO_ACT`), so :meth:`LayerSpec.key` -- the latency-table
  key -- names each distinct layer once;
* its **count** (:func:`conv_cost` summed by :meth:`TorchOp.cost`): parameters (BN affine pairs,
  SE biases) and multiply-adds (conv + linear, at each conv's output size);
* its **module** (``blocks.Block``: one ``ConvBNAct`` per conv, in the slots ``expand``, ``conv``,
  ``project``, and ``SqueezeExcite``);
* its **supernet weights** (``supernet_ops``: one dynamic conv per slot, sized by the largest
  layer of a weight group, every smaller layer a leading-channel / centre-kernel view), and
  the group a layer's weights belong to (:meth:`TorchOp.family`, see ``supernet``).

The ops (facts and references in ``search_spaces.ops``; ``in``/``out``/``mid = in * e``):

====== =========================================== =================================== ==============
op     expand slot                                 conv slot                            project slot
====== =========================================== =================================== ==============
mbconv 1x1 in->mid, act (only when e != 1)         kxk depthwise mid, stride, act       1x1 mid->out
irpw   1x1 in->in, act (always; e is 1)            kxk depthwise in, stride, act        1x1 in->out
conv   --                                          kxk in->out, stride, act             --
nodw   3x3 in->mid, act (only when e != 1)         --                                   1x1 mid->out, stride
fused  kxk in->mid, stride, act                    --                                   1x1 mid->out
skip   --                                          --                                   1x1 in->out, stride
                                                                                        (none: identity)
====== =========================================== =================================== ==============

Projections are linear (BN, no activation).  ``skip`` is the identity -- no module, no cost --
where stride is 1 and in == out, otherwise the strided 1x1 conv + BN of NAS-Bench-Macro.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, NamedTuple

from search_spaces.ops import OPS as OP_FACTS
from search_spaces.ops import OpFacts

from .layer import NO_ACT, LayerSpec

#: The slots of a block layer, in forward order (squeeze-excite sits before ``project``).
SLOTS = ("expand", "conv", "project")


class ConvSpec(NamedTuple):
    """One convolution of a layer (each is followed by BatchNorm; ``act``: and by the activation)."""

    slot: str
    cin: int
    cout: int
    kernel: int
    stride: int
    depthwise: bool
    act: bool
    in_size: int

    @property
    def out_size(self) -> int:
        return -(-self.in_size // self.stride)


def conv_cost(conv: ConvSpec) -> tuple[int, int]:
    """(params, MACs) of a conv + its BatchNorm: weights and the BN affine pair; multiply-adds at the output."""
    weights = conv.cout * (1 if conv.depthwise else conv.cin) * conv.kernel * conv.kernel
    return weights + 2 * conv.cout, weights * conv.out_size * conv.out_size


def se_cost(channels: int, squeeze: int) -> tuple[int, int]:
    """(params, MACs) of squeeze-excite: two 1x1 convs with biases on the pooled 1x1 map."""
    return 2 * channels * squeeze + squeeze + channels, 2 * channels * squeeze


def _mbconv(s: LayerSpec) -> tuple[ConvSpec, ...]:
    mid = s.in_filters * s.expand
    expand = (ConvSpec("expand", s.in_filters, mid, 1, 1, False, True, s.in_size),) if s.expand != 1 else ()
    return expand + (ConvSpec("conv", mid, mid, s.kernel, s.stride, True, True, s.in_size),
                     ConvSpec("project", mid, s.out_filters, 1, 1, False, False, s.out_size))


def _irpw(s: LayerSpec) -> tuple[ConvSpec, ...]:
    return (ConvSpec("expand", s.in_filters, s.in_filters, 1, 1, False, True, s.in_size),
            ConvSpec("conv", s.in_filters, s.in_filters, s.kernel, s.stride, True, True, s.in_size),
            ConvSpec("project", s.in_filters, s.out_filters, 1, 1, False, False, s.out_size))


def _conv(s: LayerSpec) -> tuple[ConvSpec, ...]:
    return (ConvSpec("conv", s.in_filters, s.out_filters, s.kernel, s.stride, False, True, s.in_size),)


def _nodw(s: LayerSpec) -> tuple[ConvSpec, ...]:
    mid = s.in_filters * s.expand
    expand = (ConvSpec("expand", s.in_filters, mid, 3, 1, False, True, s.in_size),) if s.expand != 1 else ()
    return expand + (ConvSpec("project", mid, s.out_filters, 1, s.stride, False, False, s.in_size),)


def _fused(s: LayerSpec) -> tuple[ConvSpec, ...]:
    mid = s.in_filters * s.expand
    return (ConvSpec("expand", s.in_filters, mid, s.kernel, s.stride, False, True, s.in_size),
            ConvSpec("project", mid, s.out_filters, 1, 1, False, False, s.out_size))


def _skip(s: LayerSpec) -> tuple[ConvSpec, ...]:
    if s.is_identity:
        return ()
    return (ConvSpec("project", s.in_filters, s.out_filters, 1, s.stride, False, False, s.in_size),)


def _mbconv_family(s: LayerSpec) -> str:
    return "sepconv" if s.expand == 1 else "mbconv"


@dataclass(frozen=True)
class TorchOp:
    """One op: its convolutions (the definition), and what is derived from them."""

    name: str
    convs: Callable[[LayerSpec], tuple[ConvSpec, ...]]
    #: The kernel every layer of the op has whatever the genotype says (the field has no effect), or None.
    kernel: int | None = None
    #: The default weight group of a layer in a supernet position (``supernet`` may merge or split groups).
    family: Callable[[LayerSpec], str] | None = None

    @property
    def facts(self) -> OpFacts:
        return OP_FACTS[self.name]

    def group(self, spec: LayerSpec) -> str:
        return self.family(spec) if self.family is not None else self.name

    def layer(self, cin: int, cout: int, kernel: int, stride: int, expand: int, se: float, skip: bool,
              in_size: int, index: int, act: str, se_act: str) -> LayerSpec:
        """The walk's :class:`LayerSpec` of a layer of this op, fields without effect pinned.

        ``skip`` is the block's identity-residual flag (a residual exists where it is on, the stride is
        1, in == out and the op can carry one); ``index`` is dropped (-1) for an identity layer.
        """
        kernel = self.kernel if self.kernel is not None else kernel
        residual = skip and stride == 1 and cin == cout and self.facts.residual
        spec = LayerSpec(self.name, cin, cout, kernel, stride, expand, se, residual, in_size, index, act,
                         se_act if se > 0 else NO_ACT)
        convs = self.convs(spec)
        if not any(c.act for c in convs):
            spec = spec._replace(act=NO_ACT)
        return spec._replace(index=-1) if not convs else spec

    def cost(self, spec: LayerSpec) -> tuple[int, int]:
        """(params, MACs) of a layer of this op: its convs (+ BN) and its squeeze-excite."""
        params = macs = 0
        for conv in self.convs(spec):
            p, m = conv_cost(conv)
            params += p
            macs += m
        if spec.se > 0:
            p, m = se_cost(se_channels(self.convs(spec)), spec.se_filters)
            params += p
            macs += m
        return params, macs


def se_channels(convs: tuple[ConvSpec, ...]) -> int:
    """The channels squeeze-excite gates: the output of the last conv before the projection."""
    for conv in reversed(convs):
        if conv.slot != "project":
            return conv.cout
    raise ValueError("squeeze-excite needs a conv before the projection; this layer has none")


_ALL = (
    TorchOp("mbconv", _mbconv, family=_mbconv_family),
    TorchOp("nodw", _nodw, kernel=3),
    TorchOp("conv", _conv),
    TorchOp("irpw", _irpw),
    TorchOp("fused", _fused),
    TorchOp("skip", _skip, kernel=1),
)

#: Every op by name, in the order of ``search_spaces.OPS`` (a test checks the two list the same ops).
OPS: Mapping[str, TorchOp] = MappingProxyType({op.name: op for op in _ALL})


def op(name: str) -> TorchOp:
    """The op ``name``; an unknown name lists the known ones."""
    try:
        return OPS[name]
    except KeyError:
        raise ValueError(f"unknown op {name!r}; known: {', '.join(OPS)}") from None


def layer_convs(spec: LayerSpec) -> tuple[ConvSpec, ...]:
    """The convolutions of a block layer (stem and head are one activated kxk / 1x1 conv each)."""
    if spec.kind in ("stem", "head"):
        return (ConvSpec("conv", spec.in_filters, spec.out_filters, spec.kernel, spec.stride, False, True,
                         spec.in_size),)
    return op(spec.kind).convs(spec)
