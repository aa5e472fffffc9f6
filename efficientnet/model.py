"""Step 3 of 3: layer walk -> ``nn.Module``, and the public model factories.

The builder takes an :class:`ArchConfig` that is already scaled; it never sees
width or depth multipliers.  ``build_model`` (of a :class:`ModelSpec`) and
``create_model`` (of an official model name) chain the three steps (decode,
scale, build).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from search_spaces import BlockGene, Frame, Genotype, resolve_genotype
from search_spaces import network_key as genotype_network_key

from .blocks import Norms, layer_module
from .layout import walk
from .scaling import coefficients, scale_arch
from .stages import DEFAULT_RESOLUTION, NUM_CLASSES, ArchConfig, stages_from_genotype


class EfficientNet(nn.Module):
    """Stem, blocks, head, pooling, dropout and classifier built from an ``ArchConfig``.

    Every layer of the walk but the identities (``skip`` layers that change nothing: they have no
    module, so genotypes that differ only in where such a layer sits build the same module), with
    the arch's activations.
    """

    def __init__(self, arch: ArchConfig, num_classes: int = NUM_CLASSES, dropout: float = 0.2,
                 drop_connect_rate: float = 0.2, bn_eps: float = 1e-3, bn_momentum: float = 0.01,
                 same_padding: bool = False) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= drop_connect_rate < 1.0:
            raise ValueError(f"drop_connect_rate must be in [0, 1), got {drop_connect_rate}")
        self.arch = arch
        norms = Norms(bn_eps, bn_momentum, same_padding)
        layers = walk(arch, resolution=1)
        stem, head = layers[0], layers[-1]
        body = [spec for spec in layers[1:-1] if not spec.is_identity]
        self.stem = layer_module(stem, norms)
        total = max(1, len(body))
        # Stochastic depth grows linearly with the block index (reference: rate * idx / num_blocks).
        self.blocks = nn.Sequential(*[layer_module(spec, norms, drop_connect_rate * spec.index / total)
                                      for spec in body])
        self.head = layer_module(head, norms)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Linear(head.out_filters, num_classes) if num_classes else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # As torchvision: kaiming-normal fan-out convs, uniform classifier, unit BatchNorm.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.forward_features(x)).flatten(1)
        return self.classifier(self.dropout(x))


@dataclass(frozen=True)
class ModelSpec:
    """A genotype at a given width, depth and resolution: everything a model or cost needs.

    ``stem_stride``: None builds the genotype's own (its frame's); 1 or 2 overrides it (the proxy
    and ``nas train`` run 32x32 inputs with a stride-1 stem).
    """

    genotype: Genotype
    width: float = 1.0
    depth: float = 1.0
    resolution: int = DEFAULT_RESOLUTION
    dropout: float = 0.2
    num_classes: int = NUM_CLASSES
    stem_stride: int | None = None

    def arch(self) -> ArchConfig:
        arch = scale_arch(stages_from_genotype(self.genotype), self.width, self.depth)
        return arch if self.stem_stride is None else arch.with_stem_stride(self.stem_stride)


def scaled_genotype(spec: ModelSpec) -> Genotype:
    """The genotype of the network ``spec`` builds, at width and depth 1.0: every block with its scaled filters
    and layers, the frame with the scaled stem and head (``fixed``: nothing left to scale) and the stem
    stride ``spec`` builds with.  ``build_model(ModelSpec(scaled_genotype(spec), resolution=..., ...))`` builds
    the same module as ``build_model(spec)``."""
    arch = spec.arch()
    blocks = tuple(BlockGene(op=s.op, kernel=s.kernel, stride=s.stride, expand=s.expand, se=s.se, skip=s.skip,
                             filters=s.out_filters, layers=s.layers) for s in arch.stages)
    frame = Frame(stem=arch.stem, head=arch.head, stem_scaling="fixed", head_scaling="fixed",
                  stem_stride=arch.stem_stride, activation=arch.activation, se_activation=arch.se_activation)
    return Genotype(blocks, frame)


def network_key(spec: ModelSpec) -> tuple:
    """A hashable key equal for two specs iff they build the same network (``search_spaces.network_key`` of
    :func:`scaled_genotype`): genotypes that differ only where the spec's width or depth rounding erases the
    difference (at the proxy's depth 0.5, blocks of 1 and 2 layers both build 1) compare equal.  Resolution,
    classes and dropout are not part of the network."""
    return genotype_network_key(scaled_genotype(spec))


def model_spec(name_or_genotype: str | Genotype, model: str | None = None, width: float | None = None,
               depth: float | None = None, resolution: int | None = None, num_classes: int = NUM_CLASSES) -> ModelSpec:
    """Resolve a genotype (name or string) and an optional official model name to a :class:`ModelSpec`.

    ``model`` (``efficientnet-b3``) sets width, depth, resolution and dropout from the coefficient
    table; explicit ``width``/``depth``/``resolution`` override it.
    """
    genotype = resolve_genotype(name_or_genotype) if isinstance(name_or_genotype, str) else name_or_genotype
    coef = coefficients(model or "efficientnet-b0")
    return ModelSpec(genotype=genotype, width=coef.width if width is None else width,
                     depth=coef.depth if depth is None else depth,
                     resolution=coef.resolution if resolution is None else resolution,
                     dropout=coef.dropout, num_classes=num_classes)


def build_model(spec: ModelSpec, **kwargs) -> EfficientNet:
    """The ``nn.Module`` of a :class:`ModelSpec`; ``kwargs`` go to :class:`EfficientNet` unchanged."""
    kwargs.setdefault("dropout", spec.dropout)
    return EfficientNet(spec.arch(), num_classes=spec.num_classes, **kwargs)


def create_model(name: str = "efficientnet-b0", num_classes: int = NUM_CLASSES, **kwargs) -> EfficientNet:
    """An official model (``efficientnet-b0`` .. ``efficientnet-l2``) built from the ``b0`` genotype."""
    return build_model(model_spec("b0", model=name, num_classes=num_classes), **kwargs)
