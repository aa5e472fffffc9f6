"""Random search: uniform proposals over the space, optionally under a cost constraint.

The baseline every NAS method must beat (Li & Talwalkar 2019, "Random Search
and Reproducibility for Neural Architecture Search", arXiv:1902.07638).  Each
decision of the factorized space is drawn uniformly and independently
(``SearchSpace.sample``); with a :class:`~controllers.Constraint`, draws are
rejected until the cost lies in its bounds, at most ``max_tries`` times.
A draw equal to a genotype already evaluated or pending is redrawn (the
base class; ``allow_repeats`` turns that off).
Results are only recorded (best, counts): nothing is learned from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search_spaces import Genotype

from .base import Controller
from .settings import ProposalSettings


@dataclass(frozen=True)
class RandomSettings(ProposalSettings):
    """Only the common ones (``allow_repeats``, ``resample_tries``); the constraint is passed to the controller."""


class RandomSearch(Controller):
    """Uniform sampling of the space (rejection sampling under a constraint)."""

    name = "random"
    settings_cls = RandomSettings

    def _propose(self) -> tuple[Genotype, dict]:
        return self._constrained(lambda: self.space.sample(self._rng), "sample"), {}

    def _observe(self, genotype: Genotype, reward: float | None, info: dict) -> None:
        pass  # nothing to learn; the base class keeps counts and the best

    def _core_state(self) -> dict[str, Any]:
        return {}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        pass
