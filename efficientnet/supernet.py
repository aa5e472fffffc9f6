"""A weight-sharing supernet of any declared space: every genotype is a path; a path extracts to a model.

``Supernet(space, width, depth, resolution, stem_stride, num_classes, ...)`` holds, for every
layer position any genotype of ``space`` can have at that size, the weights of every op the
space offers there (``supernet_ops``), sized from the space's positions (``SearchSpace.positions``
read by ``supernet_space``).  ``forward(x, genotype)`` runs the path of ``genotype``: the genotype
is decoded, scaled and walked by the same three steps as the standalone model
(``stages_from_genotype`` -> ``scale_arch`` -> ``walk``), and each :class:`LayerSpec` of the walk
runs the convs of its op (``ops.TorchOp.convs``) on views of its position's weights.  So the
path of a genotype, its built model and its analytical counts come from one walk and one op
definition and cannot drift apart.

Sharing, each choice after the paper it follows:

* layers -- a block with ``n`` layers uses the FIRST ``n`` layer positions of the block's
  maximum (elastic depth, Once-for-All, Cai et al. 2020, arXiv:1908.09791, section 3.2);
* filters and expansion -- the leading channels of the largest tensors (OFA's elastic width;
  Slimmable networks, Yu et al. 2019);
* kernel -- a kxk kernel is the centre of the largest (OFA's elastic kernel), optionally through
  OFA's learned kernel transformation matrices (``kernel_transform``);
* squeeze-excite -- one set per weight group and position, sliced to the path's squeeze width
  (a path with ``se=0`` skips it); the skip flag is the identity residual, on or off;
* ops -- each op **family** has weights of its own at a position, a choice block of Single-Path
  One-Shot (Guo et al. 2020, arXiv:1904.00420, section 3.2), with the slices above inside it:
  ``mbconv`` (expansion > 1: all expansions and kernels share one set), ``sepconv`` (mbconv at
  expansion 1: its own, or ``mbconv``'s leading channels with ``share_sepconv``), ``conv``
  (MnasNet's regular conv: a full conv has no channel-slice relation to a depthwise one),
  ``nodw``, ``irpw``, ``fused`` (each its own, sliced by expansion / kernel / width), and
  ``skip``: an identity runs nothing; where stride or channels change it runs its own strided
  1x1 conv + BN (NAS-Bench-Macro's identity);
* ``separate`` (e.g. ``("expand", "kernel")``) splits the families further: every (op,
  expansion, kernel) option then has weights of its own -- SPOS's separate choice blocks, the
  alternative to OFA's shared slices (issue 21's ranking study compares the two).

The sandwich paths (:meth:`Supernet.largest`, :meth:`Supernet.smallest`) are the extremes of the
main weight group of every block (``supernet_space.sandwich``).  Choosing a path allocates no
parameters (all slices are views; see ``dynamic_ops``).  ``extract(genotype)`` builds the
standalone :class:`EfficientNet` of the path (``build_model`` of :meth:`spec`) and copies the
path's weights into it: its outputs equal the supernet's for that path, bit for bit, and its
params/MACs are ``count_spec(spec)``.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Callable, NamedTuple, Sequence

import torch
from torch import nn

from search_spaces import Genotype, SearchSpace

from .blocks import Norms, layer_module
from .dynamic_ops import DynamicBatchNorm2d, DynamicConv2d, act, copy_bn, copy_conv
from .layer import LayerSpec
from .layout import walk
from .model import EfficientNet, ModelSpec, build_model
from .supernet_ops import SEPARABLE, OpWeights, Step, SuperLayer
from .supernet_space import block_layouts, frame_arch, layer_members, sandwich

_PLAN_CACHE = 4096


class _Plan(NamedTuple):
    spec: ModelSpec
    layers: tuple[tuple[OpWeights, tuple[Step, ...], bool], ...]  # weights, steps, residual (identities left out)
    exports: tuple[tuple[OpWeights, object], ...]  # weights, LayerSpec: for extract
    last: int  # channels entering the head


class Supernet(nn.Module):
    """All genotypes of ``space`` at one size (width, depth, resolution, stem stride), sharing weights.

    ``stem_stride`` None: the space's frame's.  Sharing options (module docstring): ``share_sepconv``,
    ``separate`` (a subset of ``supernet_ops.SEPARABLE``), ``kernel_transform``.  The path is an
    argument: ``forward(x, genotype)``; nothing about it is stored between calls except a cache of
    planned paths.  ``bn_momentum`` is PyTorch's convention (0.1 = fast).
    """

    def __init__(self, space: SearchSpace, width: float = 1.0, depth: float = 1.0, resolution: int = 224,
                 stem_stride: int | None = None, num_classes: int = 1000, dropout: float = 0.0,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.1, kernel_transform: bool = False,
                 share_sepconv: bool = False, separate: Sequence[str] = ()) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        separate = tuple(separate)
        unknown = [name for name in separate if name not in SEPARABLE]
        if unknown or len(set(separate)) != len(separate):
            raise ValueError(f"separate must list distinct fields of {', '.join(SEPARABLE)}, got {list(separate)}; "
                             "e.g. [expand, kernel] for weights of their own per option")
        self.space = space
        self.options = dict(width=width, depth=depth, resolution=resolution, stem_stride=stem_stride,
                            num_classes=num_classes, dropout=dropout, bn_eps=bn_eps, bn_momentum=bn_momentum,
                            kernel_transform=kernel_transform, share_sepconv=share_sepconv, separate=separate)
        self.frame = space.frame  # one stem and head, shared by every path
        arch = frame_arch(space, width, depth)
        if stem_stride is not None:
            arch = arch.with_stem_stride(stem_stride)
        stem = walk(arch, resolution)[0]
        self.stem = layer_module(stem, Norms(bn_eps, bn_momentum))
        self.layers = nn.ModuleList()
        last = arch.stem
        for block in block_layouts(space, width, depth):
            self.layers.append(nn.ModuleList(
                SuperLayer(layer_members(block, i, arch.activation, arch.se_act), bn_eps, bn_momentum,
                           kernel_transform, share_sepconv, separate) for i in range(block.depth)))
            last = max(block.out_filters)
        self._act = arch.activation
        self.head = DynamicConv2d(last, arch.head, 1)
        self.head_bn = DynamicBatchNorm2d(arch.head, eps=bn_eps, momentum=bn_momentum)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(arch.head, num_classes)
        # The standalone model's initialisation (it only walks self.modules()); transforms stay identity.
        EfficientNet._init_weights(self)  # type: ignore[arg-type]
        self._sandwich = sandwich(space, width, depth, share_sepconv, separate)
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
        """The sandwich's largest path: the costliest option of every block's main weight group."""
        return self._sandwich[0]

    def smallest(self) -> Genotype:
        """The sandwich's smallest path: the cheapest option of every block's main weight group (with sepconv
        weights of their own, MnasNet's smallest MBConv expansion above 1)."""
        return self._sandwich[1]

    def _plan(self, genotype: Genotype) -> _Plan:
        plan = self._plans.get(genotype)
        if plan is not None:
            self._plans.move_to_end(genotype)
            return plan
        self.validate(genotype)
        spec = self.spec(genotype)
        arch = spec.arch()
        specs = walk(arch, spec.resolution)[1:-1]
        layers, exports, pos = [], [], 0
        for stage, block in zip(arch.stages, self.layers):
            for i in range(stage.layers):
                layer = specs[pos]
                pos += 1
                if layer.is_identity:  # no module, nothing to run
                    continue
                weights = block[i].weights_for(layer)
                layers.append((weights, weights.program(layer), layer.residual))
                exports.append((weights, layer))
        plan = _Plan(spec, tuple(layers), tuple(exports), arch.stages[-1].out_filters)
        self._plans[genotype] = plan
        if len(self._plans) > _PLAN_CACHE:
            self._plans.popitem(last=False)
        return plan

    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:  # type: ignore[override]
        plan = self._plan(genotype)
        x = self.stem(x)
        for weights, steps, residual in plan.layers:
            x = weights(x, steps, residual)
        return self.forward_head(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """The shared head (1x1 conv, BN, activation, pooling, classifier) on the last layer's output."""
        x = act(self.head_bn(self.head(x)), self._act)
        return self.classifier(self.dropout(self.pool(x).flatten(1)))

    def path_layers(self, genotype: Genotype) -> tuple[tuple[tuple[OpWeights, LayerSpec],
                                                            Callable[[torch.Tensor], torch.Tensor]], ...]:
        """The layers ``forward`` runs between stem and head for ``genotype`` (identities left out), each as
        ((its weights module, its LayerSpec), a function of the input).  Paths with equal leading keys run
        equal leading layers: scorers of many paths share that prefix's work (``nas.supernet.prefix``)."""
        plan = self._plan(genotype)
        return tuple(((weights, spec), partial(weights, steps=steps, residual=residual))
                     for (weights, steps, residual), (_, spec) in zip(plan.layers, plan.exports))

    # -- extraction -------------------------------------------------------------------------------
    def extract(self, genotype: Genotype) -> EfficientNet:
        """The standalone model of ``genotype``'s path, holding copies of its inherited weights."""
        plan = self._plan(genotype)
        o = self.options
        model = build_model(plan.spec, drop_connect_rate=0.0, bn_eps=o["bn_eps"], bn_momentum=o["bn_momentum"])
        if len(model.blocks) != len(plan.exports):
            raise RuntimeError(f"the path has {len(plan.exports)} layers, its model {len(model.blocks)} blocks")
        with torch.no_grad():
            model.stem.load_state_dict(self.stem.state_dict())
            for block, (weights, spec) in zip(model.blocks, plan.exports):
                weights.export_into(block, spec)
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


def largest_genotype(space: SearchSpace, **options) -> Genotype:
    """The sandwich's largest path of ``space`` (``options``: the supernet's width, depth, share_sepconv,
    separate; see ``supernet_space.sandwich``)."""
    return sandwich(space, **options)[0]


def smallest_genotype(space: SearchSpace, **options) -> Genotype:
    """The sandwich's smallest path of ``space`` (``options`` as for :func:`largest_genotype`)."""
    return sandwich(space, **options)[1]


__all__ = ["SuperLayer", "Supernet", "largest_genotype", "smallest_genotype"]
