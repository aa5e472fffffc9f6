"""A weight-sharing supernet of a search space: every genotype is a path; a path extracts to a model.

``Supernet(space, width, depth, resolution, stem_stride, num_classes)`` holds, for every
layer position any genotype of ``space`` can have at that size, the largest weights of
that position.  ``forward(x, genotype)`` runs the path of ``genotype``: the genotype is
decoded, scaled and walked by the same three steps as the standalone model
(``stages_from_genotype`` -> ``scale_arch`` -> ``walk``), and each :class:`LayerSpec` of the
walk runs on the shared weights of its position.  So the path of a genotype, its built
model and its analytical counts come from one walk and cannot drift apart.

Sharing choices, each after the paper it follows:

* layers -- a block with ``n`` layers uses the FIRST ``n`` layer positions of the block's
  maximum (elastic depth, Once-for-All, Cai et al. 2020, arXiv:1908.09791, section 3.2);
* filters and expansion -- the leading channels of the largest tensors (OFA's elastic width;
  also Slimmable networks, Yu et al. 2019);
* kernel -- a 3x3 kernel is the centre of the 5x5 (OFA's elastic kernel), optionally through
  OFA's learned kernel transformation matrices (``kernel_transform``);
* squeeze-excite and skip -- switched per layer: SE weights exist once per layer position
  (a path with ``se=0`` skips them), the skip is the identity residual, on or off;
* MnasNet's regular kxk conv -- weights of its own, beside the MBConv weights: a choice
  block of Single-Path One-Shot (Guo et al. 2020, arXiv:1904.00420, section 3.2), since a
  full convolution has no channel-slice relation to a depthwise one.  Sepconv (MBConv with
  expansion 1) shares the MBConv depthwise and projection weights.

Choosing a path allocates no parameters (all slices are views; see ``dynamic_ops``).
``extract(genotype)`` builds the standalone :class:`EfficientNet` of the path
(``build_model`` of :meth:`spec`) and copies the path's weights into it: its outputs equal
the supernet's for that path and its params/MACs are ``count_spec(spec)``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces import BlockGene, Genotype, SearchSpace

from .blocks import Block, ConvBNAct, Norms
from .dynamic_ops import DynamicBatchNorm2d, DynamicConv2d, DynamicSqueezeExcite, copy_bn, copy_conv
from .layout import LayerSpec, walk
from .model import EfficientNet, ModelSpec, build_model
from .scaling import round_filters, round_repeats

SUPPORTED_OPS = ("mbconv", "conv")
_PLAN_CACHE = 4096


def _silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU of a BN output; in place when no gradient is recorded (scoring, recalibration): one
    activation-sized allocation less per layer, the same numbers (the standalone model's is in place)."""
    return F.silu(x, inplace=not torch.is_grad_enabled())


class _MBConvWeights(nn.Module):
    """The largest MBConv of a position: [1x1 expand], kxk depthwise, SE, 1x1 projection, each with BN."""

    def __init__(self, max_in: int, mid: int, max_out: int, stride: int, kernels: tuple[int, ...], squeeze: int,
                 norms: Norms, kernel_transform: bool, expand: bool) -> None:
        super().__init__()

        def bn(c: int) -> DynamicBatchNorm2d:
            return DynamicBatchNorm2d(c, eps=norms.eps, momentum=norms.momentum)

        self.expand_conv, self.expand_bn = (DynamicConv2d(max_in, mid, 1), bn(mid)) if expand else (None, None)
        self.dw = DynamicConv2d(mid, mid, max(kernels), stride, depthwise=True, kernels=kernels,
                                kernel_transform=kernel_transform)
        self.dw_bn = bn(mid)
        self.se = DynamicSqueezeExcite(mid, squeeze) if squeeze else None
        self.project, self.project_bn = DynamicConv2d(mid, max_out, 1), bn(max_out)

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:  # type: ignore[override]
        out = x
        if spec.expand != 1:
            out = _silu(self.expand_bn(self.expand_conv(x, spec.mid_filters)))
        out = _silu(self.dw_bn(self.dw(out, kernel=spec.kernel)))
        if spec.se > 0:
            out = self.se(out, spec.se_filters)
        return self.project_bn(self.project(out, spec.out_filters))

    def export_into(self, block: Block, spec: LayerSpec) -> None:
        cin, mid, cout = spec.in_filters, spec.mid_filters, spec.out_filters
        if spec.expand != 1:
            copy_conv(block.expand[0], self.expand_conv, cin, mid, 1)
            copy_bn(block.expand[1], self.expand_bn)
        copy_conv(block.conv[0], self.dw, mid, mid, spec.kernel)
        copy_bn(block.conv[1], self.dw_bn)
        copy_conv(block.project[0], self.project, mid, cout, 1)
        copy_bn(block.project[1], self.project_bn)
        if spec.se > 0:
            copy_conv(block.se.reduce, self.se.reduce, mid, spec.se_filters, 1)
            copy_conv(block.se.expand, self.se.expand, spec.se_filters, mid, 1)


class _ConvWeights(nn.Module):
    """MnasNet's regular kxk conv of a position (+ SE on its output), with BN."""

    def __init__(self, max_in: int, max_out: int, stride: int, kernels: tuple[int, ...], squeeze: int,
                 norms: Norms, kernel_transform: bool) -> None:
        super().__init__()
        self.conv = DynamicConv2d(max_in, max_out, max(kernels), stride, kernels=kernels,
                                  kernel_transform=kernel_transform)
        self.bn = DynamicBatchNorm2d(max_out, eps=norms.eps, momentum=norms.momentum)
        self.se = DynamicSqueezeExcite(max_out, squeeze) if squeeze else None

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:  # type: ignore[override]
        out = _silu(self.bn(self.conv(x, spec.out_filters, spec.kernel)))
        return self.se(out, spec.se_filters) if spec.se > 0 else out

    def export_into(self, block: Block, spec: LayerSpec) -> None:
        copy_conv(block.conv[0], self.conv, spec.in_filters, spec.out_filters, spec.kernel)
        copy_bn(block.conv[1], self.bn)
        if spec.se > 0:
            copy_conv(block.se.reduce, self.se.reduce, spec.out_filters, spec.se_filters, 1)
            copy_conv(block.se.expand, self.se.expand, spec.se_filters, spec.out_filters, 1)


class SuperLayer(nn.Module):
    """One layer position: its choice blocks, each holding the largest weights of its kind.

    * ``mbconv``: MBConv with expansion > 1 (leading-channel slices: elastic width and expansion);
    * ``sepconv``: MBConv with expansion 1 (no expansion conv; its depthwise runs on the block's
      input, not on expanded features): weights of its own unless ``share_sepconv``, when it
      takes the leading channels of ``mbconv``'s depthwise and projection;
    * ``conv``: the regular conv, weights of its own.

    ``forward(x, spec)`` runs the :class:`LayerSpec` of a path on the weights of its kind.
    """

    def __init__(self, max_in: int, max_out: int, stride: int, expands: tuple[int, ...], has_conv: bool,
                 kernels: tuple[int, ...], se_ratios: tuple[float, ...], norms: Norms,
                 kernel_transform: bool = False, share_sepconv: bool = False) -> None:
        super().__init__()
        self.stride = stride
        max_se = max(se_ratios)
        squeeze = max(1, int(max_in * max_se)) if max_se > 0 else 0  # LayerSpec.se_filters of the largest
        wide = [e for e in expands if e > 1]
        self.mbconv = _MBConvWeights(max_in, max_in * max(expands), max_out, stride, kernels, squeeze, norms,
                                     kernel_transform, expand=True) if wide else None
        self.sepconv = None
        if 1 in expands and not (share_sepconv and wide):
            self.sepconv = _MBConvWeights(max_in, max_in, max_out, stride, kernels, squeeze, norms, kernel_transform,
                                          expand=False)
        self.conv = _ConvWeights(max_in, max_out, stride, kernels, squeeze, norms, kernel_transform) \
            if has_conv else None

    def weights_for(self, spec: LayerSpec) -> nn.Module:
        if spec.kind == "conv":
            return self.conv
        return self.sepconv if spec.expand == 1 and self.sepconv is not None else self.mbconv

    def forward(self, x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:  # type: ignore[override]
        out = self.weights_for(spec)(x, spec)
        return out + x if spec.residual else out

    def export_into(self, block: Block, spec: LayerSpec) -> None:
        """Copy the path's weights of this position into the standalone ``block`` built from ``spec``."""
        self.weights_for(spec).export_into(block, spec)


class _Plan(NamedTuple):
    spec: ModelSpec
    layers: tuple[tuple[SuperLayer, LayerSpec], ...]
    last: int  # channels entering the head


class Supernet(nn.Module):
    """All genotypes of ``space`` at one size (width, depth, resolution, stem stride), sharing weights.

    The path is an argument: ``forward(x, genotype)``; nothing about it is stored between calls
    except a cache of decoded plans.  ``bn_momentum`` is PyTorch's convention (0.1 = fast).
    """

    def __init__(self, space: SearchSpace, width: float = 1.0, depth: float = 1.0, resolution: int = 224,
                 stem_stride: int = 2, num_classes: int = 1000, dropout: float = 0.0, bn_eps: float = 1e-3,
                 bn_momentum: float = 0.1, kernel_transform: bool = False, share_sepconv: bool = False) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.space = space
        self.options = dict(width=width, depth=depth, resolution=resolution, stem_stride=stem_stride,
                            num_classes=num_classes, dropout=dropout, bn_eps=bn_eps, bn_momentum=bn_momentum,
                            kernel_transform=kernel_transform, share_sepconv=share_sepconv)
        norms = Norms(bn_eps, bn_momentum)
        self._norms = norms
        for position in space.positions:
            unknown = sorted(set(position.values("op")) - set(SUPPORTED_OPS))
            if unknown:
                raise ValueError(f"space {space.name!r} block {position.index + 1}: op(s) {', '.join(unknown)} have "
                                 f"no supernet layer; supported: {', '.join(SUPPORTED_OPS)}")
        self.frame = largest_genotype(space).frame  # one stem and head, shared by every path
        probe = self.spec(largest_genotype(space)).arch()  # stem and head do not depend on the genotype
        self.stem = ConvBNAct(norms, 3, probe.stem, 3, probe.stem_stride, act=probe.activation)
        self.layers = nn.ModuleList()
        max_in = probe.stem
        for position in space.positions:  # H19a's minimal adapter to SearchSpace.positions (H19b replaces it)
            expands = tuple(sorted(set(position.values("expand", op="mbconv"))))
            max_out = max(round_filters(f, width) for f in position.values("filters"))
            depth_max = max(round_repeats(n, depth) for n in position.values("layers"))
            block = nn.ModuleList()
            for i in range(depth_max):
                block.append(SuperLayer(max_in if i == 0 else max_out, max_out, position.stride if i == 0 else 1,
                                        expands, "conv" in position.values("op"),
                                        tuple(sorted(position.values("kernel"))), tuple(position.values("se")),
                                        norms, kernel_transform, share_sepconv))
            self.layers.append(block)
            max_in = max_out
        self.head = DynamicConv2d(max_in, probe.head, 1)
        self.head_bn = DynamicBatchNorm2d(probe.head, eps=bn_eps, momentum=bn_momentum)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(probe.head, num_classes)
        # The standalone model's initialisation (it only walks self.modules()); transforms stay identity.
        EfficientNet._init_weights(self)  # type: ignore[arg-type]
        self._plans: OrderedDict[Genotype, _Plan] = OrderedDict()

    # -- paths ------------------------------------------------------------------------------------
    def spec(self, genotype: Genotype) -> ModelSpec:
        """The :class:`ModelSpec` of ``genotype``'s path (the supernet's size): build it, count it."""
        o = self.options
        return ModelSpec(genotype, width=o["width"], depth=o["depth"], resolution=o["resolution"],
                         dropout=o["dropout"], num_classes=o["num_classes"], stem_stride=o["stem_stride"])

    def validate(self, genotype: Genotype) -> None:
        """ValueError/TypeError naming the block and field when ``genotype`` is not a path of the space."""
        self.space.validate(genotype)
        if genotype.frame != self.frame:
            f = self.frame
            raise ValueError(f"frame: the supernet shares one stem and head (stem {f.stem} {f.stem_scaling}, head "
                             f"{f.head} {f.head_scaling}), the genotype has {genotype.frame}; score "
                             f"genotype.with_frame(stem={f.stem}, head={f.head}, stem_scaling={f.stem_scaling!r}, "
                             f"head_scaling={f.head_scaling!r}) instead")

    def largest(self) -> Genotype:
        """The sandwich's largest path (:func:`largest_genotype`)."""
        return largest_genotype(self.space)

    def smallest(self) -> Genotype:
        """The sandwich's smallest path of the SHARED weights: with sepconv weights of their own, the
        smallest MBConv expansion above 1 (the extremes bound what the leading slices share)."""
        return smallest_genotype(self.space, wide_only=not self.options["share_sepconv"])

    def _plan(self, genotype: Genotype) -> _Plan:
        plan = self._plans.get(genotype)
        if plan is not None:
            self._plans.move_to_end(genotype)
            return plan
        self.validate(genotype)
        spec = self.spec(genotype)
        arch = spec.arch()
        specs = walk(arch, spec.resolution)[1:-1]
        pairs, pos = [], 0
        for stage, block in zip(arch.stages, self.layers):
            for i in range(stage.layers):
                pairs.append((block[i], specs[pos]))
                pos += 1
        plan = _Plan(spec, tuple(pairs), arch.stages[-1].out_filters)
        self._plans[genotype] = plan
        if len(self._plans) > _PLAN_CACHE:
            self._plans.popitem(last=False)
        return plan

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:  # type: ignore[override]
        plan = self._plan(genotype)
        x = self.stem(x)
        for layer, spec in plan.layers:
            x = layer(x, spec)
        x = _silu(self.head_bn(self.head(x)))
        return self.classifier(self.dropout(self.pool(x).flatten(1)))

    # -- extraction -------------------------------------------------------------------------------
    def extract(self, genotype: Genotype) -> EfficientNet:
        """The standalone model of ``genotype``'s path, holding copies of its inherited weights."""
        plan = self._plan(genotype)
        o = self.options
        model = build_model(plan.spec, drop_connect_rate=0.0, bn_eps=o["bn_eps"], bn_momentum=o["bn_momentum"])
        with torch.no_grad():
            model.stem.load_state_dict(self.stem.state_dict())
            for block, (layer, spec) in zip(model.blocks, plan.layers):
                layer.export_into(block, spec)
            copy_conv(model.head[0], self.head, plan.last, self.head.out_channels, 1)
            copy_bn(model.head[1], self.head_bn)
            model.classifier.load_state_dict(self.classifier.state_dict())
        return model.to(self.classifier.weight.device).train(self.training)

    # -- BatchNorm ----------------------------------------------------------------------------------
    def batchnorms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    @torch.no_grad()
    def recalibrate(self, genotype: Genotype, batches: Sequence[torch.Tensor]) -> None:
        """Set the BN running statistics of ``genotype``'s path to their mean over ``batches``.

        SPOS (Guo et al. 2020, section 3.3): inherited weights with statistics left by other
        paths are useless; the statistics are recomputed on training batches before a path is
        scored.  Batch ``t`` gets momentum ``1/(t+1)`` (a cumulative mean); only the BN buffers
        of the channels the path uses change, and no parameter.
        """
        if not batches:
            raise ValueError("recalibration needs at least one batch")
        bns = self.batchnorms()
        saved = [bn.momentum for bn in bns]
        was_training = self.training
        self.train()
        try:
            for t, x in enumerate(batches):
                for bn in bns:
                    bn.momentum = 1.0 / (t + 1)
                self(x, genotype)
        finally:
            for bn, m in zip(bns, saved):
                bn.momentum = m
            self.train(was_training)

    def zero_init(self) -> None:
        """Zero the classifier (Goyal et al. 2017): every path starts at loss ln(classes).

        Unlike the standalone proxy's ``zero_init``, no projection BN scale is zeroed: it is shared
        by the skip and the noskip paths of its position, and a zero scale cuts every noskip path
        (measured: a noskip-heavy genotype trained alone through the supernet stayed at chance).
        """
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)


def _extreme(space: SearchSpace, pick, wide_only: bool = False) -> Genotype:
    blocks = []
    for position in space.positions:
        combos = position.combos()
        pool = [c for c in combos if c["op"] == "mbconv"]
        pool = ([c for c in pool if c["expand"] > 1] or pool) if wide_only else pool
        pool = pool or combos
        pool = [c for c in pool if c["skip"]] or pool
        blocks.append(BlockGene(**pick(pool, key=lambda c: (c["expand"], c["kernel"], c["se"], c["filters"],
                                                             c["layers"]))))
    return Genotype(tuple(blocks), space.frame)


def largest_genotype(space: SearchSpace) -> Genotype:
    """The sandwich rule's largest path: largest MBConv expansion, kernel, SE, filters, layers; skip on."""
    return _extreme(space, max)


def smallest_genotype(space: SearchSpace, wide_only: bool = False) -> Genotype:
    """The smallest path: smallest MBConv expansion (``wide_only``: the smallest above 1), kernel, SE,
    filters, layers; skip on."""
    return _extreme(space, min, wide_only)


__all__ = ["SUPPORTED_OPS", "SuperLayer", "Supernet", "largest_genotype", "smallest_genotype"]
