"""One cost interface: parameters and multiply-adds (``analytic``), latency (``latency``).

A cost model is built once for a deployment target (``nas.cost.target``) and
maps a genotype to a number.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from search_spaces import Genotype

from .analytic import MacsCost, ParamsCost
from .target import TargetModel

CostKind = Literal["macs", "params", "latency"]


@runtime_checkable
class CostModel(Protocol):
    name: str
    unit: str

    def cost(self, genotype: Genotype) -> float: ...


def build_cost_model(kind: CostKind, target: TargetModel | None = None,
                     latency_table: str | None = None) -> CostModel:
    """The cost model of ``kind`` (macs, params, latency from ``latency_table``) on ``target``."""
    target = target or TargetModel()
    if kind == "macs":
        return MacsCost(target)
    if kind == "params":
        return ParamsCost(target)
    if kind != "latency":
        raise ValueError(f"unknown cost {kind!r}; choose macs, params or latency")
    from .latency.cost import LatencyCost  # torch-only, no Ray

    return LatencyCost.from_table(latency_table, target)
