"""The parts of a genotype: one :class:`BlockGene` per block, and the :class:`Frame` (stem, head, activation).

A block is a stage of ``layers`` identical layers (only the first has the
block's stride).  Its ``op`` is one of the ops of :mod:`search_spaces.ops`
(``mbconv``, ``nodw``, ``conv``, ``irpw``, ``fused``, ``skip``); the op's facts
say which fields it pins (e.g. ``conv`` has ``expand`` 1, ``skip`` has kernel 1,
expand 1, no SE).

The :class:`Frame` holds what lies outside the blocks: the stem's width and
stride, the head's width, whether the width multiplier scales stem and head
(``scaled``), leaves them (``fixed``), or scales only upwards (``up``: ``max(base,
scaled)``, timm's MobileNetV2 head), and the network's activation (after every
conv but the projections, and inside squeeze-excite unless ``se_activation``
says otherwise).  A genotype carries its frame, so building, counting, training,
latency tables and export all use the same activation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .ops import OP_NAMES, op_facts

OPS = OP_NAMES
STEM_FILTERS = 32
HEAD_FILTERS = 1280
STEM_STRIDES = (1, 2)
STEM_SCALINGS = ("scaled", "fixed")
HEAD_SCALINGS = ("scaled", "fixed", "up")
#: Activations a frame may name: SiLU (EfficientNet's swish), ReLU (MnasNet), ReLU6 (MobileNetV2, Lite),
#: hard-swish (MobileNetV3).  The first is the default.
ACTIVATIONS = ("silu", "relu", "relu6", "hswish")


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


@dataclass(frozen=True)
class BlockGene:
    """One block of the factorized space (a stage of identical layers)."""

    op: str = "mbconv"
    kernel: int = 3
    stride: int = 1
    expand: int = 1
    se: float = 0.0
    skip: bool = True
    filters: int = 16
    layers: int = 1

    def __post_init__(self) -> None:
        facts = op_facts(self.op)
        for name in ("kernel", "stride", "expand", "filters", "layers"):
            value = getattr(self, name)
            if not _positive_int(value):
                raise ValueError(f"block {name} must be a positive integer, got {value!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"block kernel must be odd, got {self.kernel}")
        if not isinstance(self.se, (int, float)) or isinstance(self.se, bool) or not 0.0 <= self.se <= 1.0:
            raise ValueError(f"block se must be a ratio in [0, 1], got {self.se!r}")
        if not isinstance(self.skip, bool):
            raise ValueError(f"block skip must be true or false, got {self.skip!r}")
        object.__setattr__(self, "se", float(self.se))
        facts.check({"kernel": self.kernel, "expand": self.expand, "se": self.se, "skip": self.skip})


@dataclass(frozen=True)
class Frame:
    """Stem, head and activation of a network: widths at width 1.0, how the width multiplier treats them,
    the stem's stride, the activation (and the one inside squeeze-excite; None: the same)."""

    stem: int = STEM_FILTERS
    head: int = HEAD_FILTERS
    stem_scaling: str = "scaled"
    head_scaling: str = "scaled"
    stem_stride: int = 2
    activation: str = ACTIVATIONS[0]
    se_activation: str | None = None

    def __post_init__(self) -> None:
        for name in ("stem", "head"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} width must be a positive integer, got {getattr(self, name)!r}")
        if self.stem_scaling not in STEM_SCALINGS:
            raise ValueError(f"stem scaling must be one of {', '.join(STEM_SCALINGS)}, got {self.stem_scaling!r}")
        if self.head_scaling not in HEAD_SCALINGS:
            raise ValueError(f"head scaling must be one of {', '.join(HEAD_SCALINGS)}, got {self.head_scaling!r}")
        if isinstance(self.stem_stride, bool) or self.stem_stride not in STEM_STRIDES:
            raise ValueError(f"stem stride must be 1 or 2, got {self.stem_stride!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.se_activation is not None and self.se_activation not in ACTIVATIONS:
            raise ValueError(f"se activation must be one of {', '.join(ACTIVATIONS)} (or null: the same as the "
                             f"activation), got {self.se_activation!r}")
        if self.se_activation == self.activation:  # one way to say "the same": compare and hash equal
            object.__setattr__(self, "se_activation", None)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_FRAME

    @property
    def se_act(self) -> str:
        """The activation inside squeeze-excite."""
        return self.activation if self.se_activation is None else self.se_activation


DEFAULT_FRAME = Frame()
