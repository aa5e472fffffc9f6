"""One cost interface: parameters and multiply-adds (analytical), latency (nas.latency).

A cost model is built once for a deployment target (resolution, classes,
width/depth multipliers) and maps a genotype to a number.  MnasNet/EfficientNet
compute the cost on the TARGET model (e.g. 224x224, 1000 classes), never on
the down-scaled proxy network, so these models take the target's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from efficientnet import ModelSpec, count_arch
from search_spaces import Genotype

from .objective import ObjectiveConfig


@runtime_checkable
class CostModel(Protocol):
    name: str
    unit: str

    def cost(self, genotype: Genotype) -> float: ...


@dataclass(frozen=True)
class TargetModel:
    """The deployment model a cost is measured on."""

    resolution: int = 224
    num_classes: int = 1000
    width: float = 1.0
    depth: float = 1.0

    def spec(self, genotype: Genotype) -> ModelSpec:
        return ModelSpec(genotype, width=self.width, depth=self.depth, resolution=self.resolution,
                         num_classes=self.num_classes)

    def counts(self, genotype: Genotype) -> tuple[int, int]:
        """(params, MACs) of ``genotype`` on this target, analytically."""
        spec = self.spec(genotype)
        return count_arch(spec.arch(), spec.resolution, spec.num_classes)


class MacsCost:
    """Multiply-adds of the target model (the paper's "FLOPs")."""

    name = "macs"
    unit = "MACs"

    def __init__(self, target: TargetModel | None = None) -> None:
        self.target = target or TargetModel()

    def cost(self, genotype: Genotype) -> float:
        return float(self.target.counts(genotype)[1])


class ParamsCost:
    """Parameters of the target model."""

    name = "params"
    unit = "params"

    def __init__(self, target: TargetModel | None = None) -> None:
        self.target = target or TargetModel()

    def cost(self, genotype: Genotype) -> float:
        return float(self.target.counts(genotype)[0])


def build_cost_model(objective: ObjectiveConfig, target: TargetModel | None = None) -> CostModel:
    """The cost model an objective asks for, on ``target`` (the deployment model)."""
    target = target or TargetModel()
    if objective.cost == "macs":
        return MacsCost(target)
    if objective.cost == "params":
        return ParamsCost(target)
    from .latency import LatencyCost  # the hardware-target module; torch-only, no Ray

    return LatencyCost.from_table(objective.latency_table, target)
