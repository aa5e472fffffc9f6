"""The deployment model a cost is measured on.

MnasNet/EfficientNet compute the cost on the TARGET model (e.g. 224x224, 1000
classes), never on the down-scaled proxy network, so every cost model takes a
:class:`TargetModel`.  A leaf: it imports only ``efficientnet``.
"""

from __future__ import annotations

from dataclasses import dataclass

from efficientnet import ModelSpec, count_spec
from efficientnet.stages import DEFAULT_RESOLUTION, NUM_CLASSES
from search_spaces import Genotype


@dataclass(frozen=True)
class TargetModel:
    """The deployment model a cost is measured on (default: B0's, 224x224 and 1000 classes)."""

    resolution: int = DEFAULT_RESOLUTION
    num_classes: int = NUM_CLASSES
    width: float = 1.0
    depth: float = 1.0

    def spec(self, genotype: Genotype) -> ModelSpec:
        return ModelSpec(genotype, width=self.width, depth=self.depth, resolution=self.resolution,
                         num_classes=self.num_classes)

    def counts(self, genotype: Genotype) -> tuple[int, int]:
        """(params, MACs) of ``genotype`` on this target, analytically."""
        return count_spec(self.spec(genotype))
