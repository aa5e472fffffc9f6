"""Step 2 of 3: width/depth scaling and the one coefficient table.

Rounding follows the reference (tensorflow/tpu efficientnet_model.round_filters
and round_repeats, the same in torchvision, timm and lukemelas' port):

* ``round_filters``: multiply by the width coefficient, round to the nearest
  multiple of ``divisor`` (8), never below ``divisor``, and add one more
  ``divisor`` when rounding lost more than 10%.  Stem and head are scaled
  the same way as the stages unless the arch says otherwise: ``fixed``
  (MnasNet's and Lite's head, Lite's stem: timm ``fix_stem``, TF
  ``fix_head_stem``) or ``up`` (``max(base, scaled)``, timm's MobileNetV2 head).
* ``round_repeats``: ``ceil(depth * layers)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .stages import ArchConfig


@dataclass(frozen=True)
class Coefficients:
    width: float
    depth: float
    resolution: int
    dropout: float


#: The official hand-set table: Tan & Le 2019 (arXiv:1905.11946) section 4,
#: as released in tensorflow/tpu efficientnet_builder.efficientnet_params
#: (B8 and L2 from the same file, Xie et al. 2020 "Noisy Student").
COEFFICIENTS: dict[str, Coefficients] = {
    "efficientnet-b0": Coefficients(1.0, 1.0, 224, 0.2),
    "efficientnet-b1": Coefficients(1.0, 1.1, 240, 0.2),
    "efficientnet-b2": Coefficients(1.1, 1.2, 260, 0.3),
    "efficientnet-b3": Coefficients(1.2, 1.4, 300, 0.3),
    "efficientnet-b4": Coefficients(1.4, 1.8, 380, 0.4),
    "efficientnet-b5": Coefficients(1.6, 2.2, 456, 0.4),
    "efficientnet-b6": Coefficients(1.8, 2.6, 528, 0.5),
    "efficientnet-b7": Coefficients(2.0, 3.1, 600, 0.5),
    "efficientnet-b8": Coefficients(2.2, 3.6, 672, 0.5),
    "efficientnet-l2": Coefficients(4.3, 5.3, 800, 0.5),
}


#: Parameters of EfficientNet-B0..B7 (1000 classes): torchvision's and timm's published counts
#: (efficientnet-pytorch's are the same).  Every model of ``COEFFICIENTS`` b0..b7 reproduces them exactly.
OFFICIAL_PARAMS = (5_288_548, 7_794_184, 9_109_994, 12_233_232, 19_341_616, 30_389_784, 43_040_704, 66_347_960)
#: Multiply-adds (conv + linear) of B0..B7 at each model's own resolution: torchvision's metadata "GFLOPS".
OFFICIAL_GMACS = (0.386, 0.687, 0.994, 1.827, 4.394, 10.266, 19.068, 37.746)
#: B0 at 224 exactly, counted by ``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2; conv + linear).
B0_MACS = 385_814_752


def coefficients(name: str) -> Coefficients:
    if name not in COEFFICIENTS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(COEFFICIENTS)}")
    return COEFFICIENTS[name]


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Scale ``filters`` by ``width`` and round to a multiple of ``divisor`` (the 90% rule)."""
    if width == 1.0:
        return int(filters)
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(layers: int, depth: float) -> int:
    """Scale a stage's layer count by ``depth``, rounding up."""
    if depth == 1.0:
        return int(layers)
    return int(math.ceil(depth * layers))


def check_multipliers(width: float, depth: float) -> None:
    for name, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
            raise ValueError(f"{name} multiplier must be a positive number, got {value!r}")


def scale_arch(arch: ArchConfig, width: float = 1.0, depth: float = 1.0, divisor: int = 8) -> ArchConfig:
    """``arch`` with every channel count and stage depth scaled by the reference rounding."""
    check_multipliers(width, depth)
    if width == 1.0 and depth == 1.0:
        return arch
    stem = arch.stem if arch.stem_scaling == "fixed" else round_filters(arch.stem, width, divisor)
    stages = tuple(
        s._replace(in_filters=stem if i == 0 and s.in_filters == arch.stem else round_filters(s.in_filters, width, divisor),
                   out_filters=round_filters(s.out_filters, width, divisor),
                   layers=round_repeats(s.layers, depth))
        for i, s in enumerate(arch.stages))
    head = round_filters(arch.head, width, divisor)
    head = arch.head if arch.head_scaling == "fixed" else max(arch.head, head) if arch.head_scaling == "up" else head
    return replace(arch, stages=stages, stem=stem, head=head)
