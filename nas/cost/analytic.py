"""Analytical costs: parameters and multiply-adds of the target model, from the layer walk."""

from __future__ import annotations

from search_spaces import Genotype

from .target import TargetModel


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
