"""Step 1 of 3: genotype -> stage configs (the shape of Table 1 of the paper).

Tan & Le 2019 (arXiv:1905.11946) Table 1 lists EfficientNet-B0 as stages of
identical layers: operator, resolution, channels, layers.  An
:class:`ArchConfig` is that table for any genotype, plus the stem and head.
It carries no multipliers: scaling (``scaling.py``) returns another
``ArchConfig`` and the builder (``model.py``) never sees width or depth.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from search_spaces import Genotype
# one definition of the defaults
from search_spaces.genes import ACTIVATIONS, DEFAULT_FRAME, HEAD_FILTERS, STEM_FILTERS, STEM_STRIDES

#: EfficientNet-B0's input resolution and ImageNet's classes: the defaults of every model and target.
DEFAULT_RESOLUTION = 224
NUM_CLASSES = 1000


class StageConfig(NamedTuple):
    """A stage: ``layers`` identical layers; only the first has ``stride`` and ``in_filters``."""

    op: str
    kernel: int
    stride: int
    expand: int
    in_filters: int
    out_filters: int
    layers: int
    se: float
    skip: bool


@dataclass(frozen=True)
class ArchConfig:
    """Stem, stages and head of a network, all in absolute channel counts, and its activations.

    ``stem_scaling`` (scaled | fixed) and ``head_scaling`` (scaled | fixed | up)
    tell ``scale_arch`` whether the width multiplier applies to stem and head.
    ``activation`` follows every conv but the projections (stem and head included);
    ``se_activation`` is the one inside squeeze-excite (None: the same).  All come from the
    genotype's :class:`~search_spaces.Frame`.
    """

    stages: tuple[StageConfig, ...]
    stem: int = STEM_FILTERS
    head: int = HEAD_FILTERS
    stem_stride: int = DEFAULT_FRAME.stem_stride
    stem_scaling: str = "scaled"
    head_scaling: str = "scaled"
    activation: str = DEFAULT_FRAME.activation
    se_activation: str | None = None

    def __post_init__(self) -> None:
        for name in ("activation", "se_activation"):
            value = getattr(self, name)
            if value not in ACTIVATIONS and not (name == "se_activation" and value is None):
                raise ValueError(f"{name} must be one of {', '.join(ACTIVATIONS)}, got {value!r}")

    @property
    def se_act(self) -> str:
        """The activation inside squeeze-excite."""
        return self.activation if self.se_activation is None else self.se_activation

    @property
    def num_layers(self) -> int:
        return sum(s.layers for s in self.stages)

    def with_stem_stride(self, stride: int) -> "ArchConfig":
        if isinstance(stride, bool) or stride not in STEM_STRIDES:
            raise ValueError(f"stem_stride must be 1 or 2, got {stride!r}")
        return self if stride == self.stem_stride else replace(self, stem_stride=stride)


def stages_from_genotype(genotype: Genotype, stem: int | None = None, head: int | None = None) -> ArchConfig:
    """The stage table of ``genotype`` (channels chained from the stem); stem/head from its frame unless given,
    and the frame's stem stride, scalings and activations."""
    frame = genotype.frame
    stem = frame.stem if stem is None else stem
    head = frame.head if head is None else head
    stages = []
    in_filters = stem
    for block in genotype.blocks:  # positional: this runs for every candidate of a search
        stages.append(StageConfig(block.op, block.kernel, block.stride, block.expand, in_filters, block.filters,
                                  block.layers, block.se, block.skip))
        in_filters = block.filters
    return ArchConfig(stages=tuple(stages), stem=stem, head=head, stem_stride=frame.stem_stride,
                      stem_scaling=frame.stem_scaling, head_scaling=frame.head_scaling, activation=frame.activation,
                      se_activation=frame.se_activation)
