"""One cost interface: parameters and multiply-adds (analytical), latency (nas.latency).

A cost model is built once for a deployment target (resolution, classes,
width/depth multipliers) and maps a genotype to a number.  MnasNet/EfficientNet
compute the cost on the TARGET model (e.g. 224x224, 1000 classes), never on
the down-scaled proxy network, so these models take the target's settings.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from efficientnet import ModelSpec, count_arch
from search_spaces import DEFAULT_FRAME, Frame, Genotype

from .objective import ObjectiveConfig


@runtime_checkable
class CostModel(Protocol):
    name: str
    unit: str

    def cost(self, genotype: Genotype) -> float: ...


@dataclass(frozen=True)
class TargetModel:
    """The deployment model a cost is measured on.

    ``stem``, ``head``, ``stem_scaling`` (scaled | fixed) and ``head_scaling``
    (scaled | fixed | up) override the genotype's frame (None: keep the
    genotype's, by default a 32-filter stem and a 1280-filter head, both
    scaled with ``width``), e.g. ``target: {head: 1280, head_scaling: fixed}``
    for MnasNet's unscaled head.
    """

    resolution: int = 224
    num_classes: int = 1000
    width: float = 1.0
    depth: float = 1.0
    stem: int | None = None
    head: int | None = None
    stem_scaling: Literal["scaled", "fixed"] | None = None
    head_scaling: Literal["scaled", "fixed", "up"] | None = None

    def __post_init__(self) -> None:
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
