"""The parts of a genotype: one :class:`BlockGene` per block, and the :class:`Frame` (stem and head).

A block is a stage of ``layers`` identical layers (only the first has the
block's stride).  Its ``op`` is one of :data:`OPS`:

* ``mbconv`` -- MBConv (Sandler et al. 2018; tensorflow/tpu
  ``efficientnet_model.MBConvBlock``): a 1x1 expansion conv only when
  ``expand != 1``, a kxk depthwise conv with the block's stride, optional
  squeeze-excite, a linear 1x1 projection.  At ``expand == 1`` it is the
  separable conv of MnasNet (timm's ``ds``).
* ``conv`` -- MnasNet's regular conv (Tan et al. 2019, section 4.1): one kxk
  convolution in -> out with the block's stride, BatchNorm, activation;
  optional squeeze-excite on its output.  No expansion (``expand == 1``).
* ``nodw`` -- tensorflow/tpu ``MBConvBlockWithoutDepthwise`` (TF's ``c1``):
  a **3x3** expansion conv (stride 1) only when ``expand != 1``, then a 1x1
  projection with the block's stride; no depthwise conv, no squeeze-excite.
  ``kernel`` is kept as written but has no effect, as in TF.
* ``irpw`` -- timm's ``InvertedResidual`` at expansion 1: it keeps its 1x1
  ``conv_pw`` (in -> in) before the depthwise conv, unlike ``mbconv`` at
  ``expand == 1``.  ``expand`` must be 1 (for other ratios it is ``mbconv``).

The :class:`Frame` holds what lies outside the blocks: the stem's and the
head's widths and whether the width multiplier scales them (``scaled``),
leaves them (``fixed``), or scales only upwards (``up``: ``max(base,
scaled)``, timm's MobileNetV2 head).
"""

from __future__ import annotations

from dataclasses import dataclass

OPS = ("mbconv", "conv", "nodw", "irpw")
STEM_FILTERS = 32
HEAD_FILTERS = 1280
STEM_SCALINGS = ("scaled", "fixed")
HEAD_SCALINGS = ("scaled", "fixed", "up")


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
        if self.op not in OPS:
            raise ValueError(f"block op must be one of {', '.join(OPS)}, got {self.op!r}")
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
        if self.op == "conv" and self.expand != 1:
            raise ValueError(f"a regular conv block has no expansion: expand must be 1, got {self.expand}")
        if self.op == "irpw" and self.expand != 1:
            raise ValueError(f"op irpw is the expand-1 inverted residual: expand must be 1, got {self.expand}; "
                             "use op mbconv for other ratios")
        if self.op == "nodw" and self.se > 0:
            raise ValueError(f"TF's c1 block (MBConvBlockWithoutDepthwise) has no squeeze-excite: TF ignores "
                             f"se{self.se:g} there; drop the se token")
        object.__setattr__(self, "se", float(self.se))


@dataclass(frozen=True)
class Frame:
    """Stem and head of a network: widths at width 1.0 and how the width multiplier treats them."""

    stem: int = STEM_FILTERS
    head: int = HEAD_FILTERS
    stem_scaling: str = "scaled"
    head_scaling: str = "scaled"

    def __post_init__(self) -> None:
        for name in ("stem", "head"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} width must be a positive integer, got {getattr(self, name)!r}")
        if self.stem_scaling not in STEM_SCALINGS:
            raise ValueError(f"stem scaling must be one of {', '.join(STEM_SCALINGS)}, got {self.stem_scaling!r}")
        if self.head_scaling not in HEAD_SCALINGS:
            raise ValueError(f"head scaling must be one of {', '.join(HEAD_SCALINGS)}, got {self.head_scaling!r}")

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_FRAME


DEFAULT_FRAME = Frame()
