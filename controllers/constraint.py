"""A cost constraint for proposals: ``lo <= cost(genotype) <= hi``, enforced by bounded rejection.

MnasNet (Tan et al. 2019, arXiv:1807.11626, section 3) folds cost into the
reward; a hard box on the cost is the other common choice (e.g. "MACs in
[300M, 500M]").  Controllers apply it by rejection: propose, measure, retry —
at most ``max_tries`` times, then fail with the bounds, the number of tries
and the closest cost seen (STYLE habit 7: every loop has a bound).

The cost function is injected (``nas.cost.analytic.MacsCost(...).cost`` is one), so this
package never imports ``nas``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from search_spaces import Genotype


class InfeasibleConstraintError(ValueError):
    """No proposal within ``max_tries`` met the constraint."""


@dataclass(frozen=True)
class Constraint:
    """Keep proposals with ``lo <= cost(genotype) <= hi``.

    ``cost``: a function ``Genotype -> float`` (e.g. multiply-adds of the
    target model); ``unit`` only labels messages; ``max_tries`` bounds the
    rejection loop of one proposal.
    """

    cost: Callable[[Genotype], float]
    lo: float = 0.0
    hi: float = math.inf
    max_tries: int = 1000
    unit: str = ""

    def __post_init__(self) -> None:
        if not callable(self.cost):
            raise TypeError(f"Constraint.cost must be a function Genotype -> float, got {type(self.cost).__name__}")
        for field in ("lo", "hi"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"Constraint.{field} must be a number, got {value!r}")
        if not self.lo <= self.hi:
            raise ValueError(f"Constraint needs lo <= hi, got lo={self.lo:g}, hi={self.hi:g}; swap or widen the bounds")
        if isinstance(self.max_tries, bool) or not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ValueError(f"Constraint.max_tries must be a positive integer, got {self.max_tries!r}")

    def distance(self, cost: float) -> float:
        """How far ``cost`` lies outside ``[lo, hi]`` (0 inside, inf for NaN)."""
        if math.isnan(cost):
            return math.inf
        return max(self.lo - cost, cost - self.hi, 0.0)

    def satisfied(self, genotype: Genotype) -> bool:
        return self.distance(float(self.cost(genotype))) == 0.0

    def sample(self, propose: Callable[[], Genotype], what: str = "proposal") -> Genotype:
        """Call ``propose`` until a genotype meets the bounds, at most ``max_tries`` times.

        Raises :class:`InfeasibleConstraintError` (a ValueError) stating the
        bounds, the tries and the closest cost seen.
        """
        closest, closest_gap = math.nan, math.inf
        for _ in range(self.max_tries):
            genotype = propose()
            cost = float(self.cost(genotype))
            gap = self.distance(cost)
            if gap == 0.0:
                return genotype
            if gap < closest_gap:
                closest, closest_gap = cost, gap
        unit = f" {self.unit}" if self.unit else ""
        raise InfeasibleConstraintError(
            f"no {what} with cost in [{self.lo:.6g}, {self.hi:.6g}]{unit} after {self.max_tries} tries; "
            f"the closest cost seen was {closest:.6g}{unit}; widen the bounds or raise max_tries")
