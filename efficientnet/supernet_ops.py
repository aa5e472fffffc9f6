"""The supernet's weights of one layer position, for every op: weight groups of dynamic convs.

Every layer a path can put at a position belongs to one **weight group** (:func:`weight_group`);
a group holds, for each conv slot its members use (``expand``, ``conv``, ``project`` of
``efficientnet.ops``), ONE dynamic conv + BN sized by the largest member, and one squeeze-excite
sized by the largest member that has SE.  A member runs on views of those tensors: the leading
output/input channels and the centre kernel (Once-for-All, Cai et al. 2020, arXiv:1908.09791,
section 3.2; ``dynamic_ops``).  Because each op is defined by its convs (``ops.TorchOp.convs``),
the same class holds the weights of every op, and a path's layer runs exactly the convs its
standalone ``Block`` is built from -- which is why ``extract`` is exact for any op.

Which layers share a group (``supernet.Supernet`` documents the defaults and the options):

* by default one group per op **family** (``ops.TorchOp.group``): all ``mbconv`` expansions > 1 share
  one set (OFA's elastic expansion, kernel, width and SE); ``sepconv`` (mbconv at expansion 1,
  whose depthwise conv runs on the block's input, not on expanded features) is its own family
  unless ``share_sepconv`` merges it into ``mbconv``; ``conv``, ``nodw``, ``irpw``, ``fused`` and
  ``skip`` each have weights of their own -- the choice blocks of Single-Path One-Shot (Guo et
  al. 2020, arXiv:1904.00420, section 3.2) -- with OFA slices inside each (kernel centre,
  expansion and width by leading channels);
* ``separate`` splits groups further by fields, e.g. ``("expand", "kernel")`` gives every
  (op, expansion, kernel) option weights of its own (SPOS's choice blocks for every option,
  no kernel or expansion slicing);
* ``skip`` has weights only where a path's skip layer is not an identity (stride 2 or in != out):
  its own strided 1x1 conv + BN; an identity runs nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .blocks import Block
from .dynamic_ops import DynamicBatchNorm2d, DynamicConv2d, DynamicSqueezeExcite, act, copy_bn, copy_conv
from .layer import LayerSpec
from .ops import SLOTS, layer_convs, op, se_channels

#: Fields that ``separate`` may split weight groups by.
SEPARABLE = ("expand", "kernel")


def weight_group(spec: LayerSpec, share_sepconv: bool = False, separate: tuple[str, ...] = ()) -> str:
    """The name of the weight group ``spec`` runs on at its position (``mbconv``, ``sepconv``, ``mbconv_e6_k5``)."""
    family = op(spec.kind).group(spec)
    if share_sepconv and family == "sepconv":
        family = "mbconv"
    return "_".join([family, *(f"{name[0]}{getattr(spec, name)}" for name in separate)])


class Step(NamedTuple):
    """One step of a path's layer on a group's weights: a conv + BN (+ activation ``act``), or, without ``bn``,
    squeeze-excite (``cout`` its squeeze width, ``act`` its activation)."""

    module: nn.Module
    bn: nn.Module | None
    cout: int
    kernel: int
    act: str | None


class OpWeights(nn.Module):
    """The weights of one group at one position, sized by its largest members (``members``: every layer spec
    the group can be asked to run there, at every channel count a path can give it)."""

    def __init__(self, members: list[LayerSpec], eps: float, momentum: float, kernel_transform: bool) -> None:
        super().__init__()
        convs = [c for m in members for c in layer_convs(m)]
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        self._slot_index: dict[str, int] = {}
        for slot in SLOTS:
            mine = [c for c in convs if c.slot == slot]
            if not mine:
                continue
            shapes = {(c.stride, c.depthwise) for c in mine}
            if len(shapes) != 1:
                raise ValueError(f"weight group of {sorted({m.kind for m in members})}: slot {slot} has strides / "
                                 f"depthwise flags {sorted(shapes)}; they cannot share one tensor")
            stride, depthwise = shapes.pop()
            kernels = tuple(sorted({c.kernel for c in mine}))
            cin, cout = max(c.cin for c in mine), max(c.cout for c in mine)
            self._slot_index[slot] = len(self.convs)
            self.convs.append(DynamicConv2d(cin, cout, max(kernels), stride, depthwise=depthwise, kernels=kernels,
                                            kernel_transform=kernel_transform))
            self.bns.append(DynamicBatchNorm2d(cout, eps=eps, momentum=momentum))
        with_se = [m for m in members if m.se > 0]
        self.se = DynamicSqueezeExcite(max(se_channels(layer_convs(m)) for m in with_se),
                                       max(m.se_filters for m in with_se)) if with_se else None

    def program(self, spec: LayerSpec) -> tuple[Step, ...]:
        """The steps of ``spec`` on these weights (computed once per path and cached with its plan)."""
        steps = []
        convs = layer_convs(spec)
        se = Step(self.se, None, spec.se_filters, 0, spec.se_act) if spec.se > 0 else None
        for c in convs:
            if c.slot == "project" and se is not None:
                steps.append(se)
                se = None
            i = self._slot_index[c.slot]
            steps.append(Step(self.convs[i], self.bns[i], c.cout, c.kernel, spec.act if c.act else None))
        return tuple(steps) + ((se,) if se is not None else ())

    def forward(self, x: torch.Tensor, steps: tuple[Step, ...],  # type: ignore[override]
                residual: bool) -> torch.Tensor:
        out = x
        for module, bn, cout, kernel, activation in steps:
            if bn is None:
                out = module(out, cout, activation)
                continue
            out = bn(module(out, cout, kernel))
            if activation is not None:
                out = act(out, activation)
        return out + x if residual else out

    def export_into(self, block: Block, spec: LayerSpec) -> None:
        """Copy the path's slices into the standalone ``block`` built from ``spec`` (the same convs)."""
        convs = layer_convs(spec)
        for c in convs:
            i = self._slot_index[c.slot]
            module = getattr(block, c.slot)
            copy_conv(module[0], self.convs[i], c.cin, c.cout, c.kernel)
            copy_bn(module[1], self.bns[i])
        if spec.se > 0:
            channels = se_channels(convs)
            copy_conv(block.se.reduce, self.se.reduce, channels, spec.se_filters, 1)
            copy_conv(block.se.expand, self.se.expand, spec.se_filters, channels, 1)


class SuperLayer(nn.Module):
    """One layer position: a :class:`OpWeights` per weight group (``groups``, by :func:`weight_group` name)."""

    def __init__(self, members: list[LayerSpec], eps: float, momentum: float, kernel_transform: bool = False,
                 share_sepconv: bool = False, separate: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.share_sepconv = share_sepconv
        self.separate = tuple(separate)
        by_group: dict[str, list[LayerSpec]] = {}
        for spec in members:
            if not spec.is_identity:
                by_group.setdefault(self.group(spec), []).append(spec)
        self.groups = nn.ModuleDict({name: OpWeights(specs, eps, momentum, kernel_transform)
                                     for name, specs in by_group.items()})

    def group(self, spec: LayerSpec) -> str:
        return weight_group(spec, self.share_sepconv, self.separate)

    def weights_for(self, spec: LayerSpec) -> OpWeights:
        name = self.group(spec)
        if name not in self.groups:
            raise ValueError(f"layer {spec.kind} (expand {spec.expand}, kernel {spec.kernel}) has no weights at this "
                             f"position (groups: {', '.join(self.groups) or 'none'}); is the genotype in the space?")
        return self.groups[name]
