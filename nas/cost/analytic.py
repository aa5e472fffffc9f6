"""Analytical costs: parameters and multiply-adds of the target model, from the layer walk."""

from __future__ import annotations

from search_spaces import Genotype

from .target import TargetModel


class _CountCost:
    """One of the target model's analytical ``(params, MACs)`` counts."""

    name: str
    unit: str
    _index: int

    def __init__(self, target: TargetModel | None = None) -> None:
        self.target = target or TargetModel()

    def cost(self, genotype: Genotype) -> float:
        return float(self.target.counts(genotype)[self._index])


class MacsCost(_CountCost):
    """Multiply-adds of the target model (the paper's "FLOPs")."""

    name, unit, _index = "macs", "MACs", 1


class ParamsCost(_CountCost):
    """Parameters of the target model."""

    name, unit, _index = "params", "params", 0
