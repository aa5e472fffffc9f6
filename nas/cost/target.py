"""The deployment model a cost is measured on.

MnasNet/EfficientNet compute the cost on the TARGET model (e.g. 224x224, 1000
classes), never on the down-scaled proxy network, so every cost model takes a
:class:`TargetModel`.  A leaf: it imports only ``efficientnet`` and ``search_spaces``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from efficientnet import ModelSpec, count_spec
from efficientnet.stages import DEFAULT_RESOLUTION, NUM_CLASSES
from search_spaces import DEFAULT_FRAME, Frame, Genotype


#: The scale of any model effnas builds: width and depth multipliers in (0, MAX], resolution in pixels.
#: EfficientNet-B7 is width 2.0, depth 3.1, 600 px; compound phi = 20 is already depth 38 (nas train --phi).
MAX_WIDTH = 8.0
MAX_DEPTH = 8.0
RESOLUTION_RANGE = (8, 4096)


def check_scale(width: float, depth: float, resolution: int, where: str, fix: str) -> None:
    """ValueError naming ``where`` (e.g. ``target`` or ``--phi 100``) when a multiplier is out of range."""
    import math

    for name, value, high in (("width", width, MAX_WIDTH), ("depth", depth, MAX_DEPTH)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0 < value <= high:
            raise ValueError(f"{where}: {name} multiplier must be in (0, {high:g}], got {value!r}; {fix}")
    low, high = RESOLUTION_RANGE
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not low <= resolution <= high:
        raise ValueError(f"{where}: resolution must be in [{low}, {high}] pixels, got {resolution!r}; {fix}")


@dataclass(frozen=True)
class TargetModel:
    """The deployment model a cost is measured on (default: B0's, 224x224 and 1000 classes).

    ``stem``, ``head``, ``stem_scaling`` (scaled | fixed) and ``head_scaling``
    (scaled | fixed | up) override the genotype's frame (None: keep the
    genotype's, by default a 32-filter stem and a 1280-filter head, both
    scaled with ``width``), e.g. ``target: {head: 1280, head_scaling: fixed}``
    for MnasNet's unscaled head.
    """

    resolution: int = DEFAULT_RESOLUTION
    num_classes: int = NUM_CLASSES
    width: float = 1.0
    depth: float = 1.0
    stem: int | None = None
    head: int | None = None
    stem_scaling: Literal["scaled", "fixed"] | None = None
    head_scaling: Literal["scaled", "fixed", "up"] | None = None

    def __post_init__(self) -> None:
        check_scale(self.width, self.depth, self.resolution, "target", "e.g. target: {resolution: 224, width: 1.0}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"target.num_classes must be an integer >= 1, got {self.num_classes!r}; e.g. 1000")
        Frame(**{**dataclasses.asdict(DEFAULT_FRAME), **self.frame_changes()})  # raises naming the field

    def frame_changes(self) -> dict:
        return {n: getattr(self, n) for n in ("stem", "head", "stem_scaling", "head_scaling")
                if getattr(self, n) is not None}

    def spec(self, genotype: Genotype) -> ModelSpec:
        changes = self.frame_changes()
        return ModelSpec(genotype.with_frame(**changes) if changes else genotype, width=self.width,
                         depth=self.depth, resolution=self.resolution, num_classes=self.num_classes)

    def counts(self, genotype: Genotype) -> tuple[int, int]:
        """(params, MACs) of ``genotype`` on this target, analytically."""
        return count_spec(self.spec(genotype))
