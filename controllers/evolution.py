"""Regularized (aging) evolution, Real et al. 2019 (AAAI, arXiv:1802.01548), Algorithm 1.

* Warm-up: random genotypes (uniform, under the constraint if one is set)
  until ``warmup`` results (default: ``population``) are in the population.
* Then every ask runs a tournament: ``sample`` members are drawn uniformly
  **with replacement** from the population (as in the paper's algorithm), the
  one with the highest reward is the parent, and the child is
  ``space.mutate(parent, rng, num=mutations)`` (``mutations`` distinct
  decisions changed).  Under a constraint the mutation is redrawn from the same
  parent until the child's cost fits, at most ``max_tries`` times.
* Every successful result joins the population on the right; when it holds
  more than ``population`` members the **oldest** is removed, whatever its
  reward (the "aging" regularization of section 3).

Asynchronous use (section 3: workers pick up the current population when they
free up): asks may be pending while others are told; the population only
holds told results.  Failed trials (reward None/NaN/inf) never enter the
population: they are counted in ``stats()['failed']`` and otherwise ignored.
A child equal to a genotype already evaluated or pending is redrawn (a new
tournament and mutation; the base class's rule, see :mod:`controllers.base`);
the paper evaluates such duplicates again, ``allow_repeats: true`` restores
that.  A genotype passed to ``add_evaluated`` joins the population like a
told result (a warm start from known architectures).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from search_spaces import Genotype

from .base import Controller
from .settings import ProposalSettings, check_int


@dataclass(frozen=True)
class EvolutionSettings(ProposalSettings):
    """``population`` P, tournament ``sample`` S, ``mutations`` per child, ``warmup`` (None = P).

    Defaults keep the paper's S/P = 1/4 (P=100, S=25 for 20k samples) at a size suited to
    searches of hundreds to a few thousand trials (bench/controllers.py).
    """

    population: int = 64
    sample: int = 16
    mutations: int = 1
    warmup: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "EvolutionSettings"
        check_int(owner, "population", self.population, 2)
        check_int(owner, "sample", self.sample, 1)
        check_int(owner, "mutations", self.mutations, 1)
        if self.sample > self.population:
            raise ValueError(f"{owner}.sample must be <= population ({self.population}), got {self.sample}; "
                             "the paper uses e.g. population 100, sample 25")
        if self.warmup is not None:
            check_int(owner, "warmup", self.warmup, 1)
            if self.warmup > self.population:
                raise ValueError(f"{owner}.warmup must be <= population ({self.population}), got {self.warmup}; "
                                 "the population never holds more members, so evolution would never start")

    @property
    def warmup_size(self) -> int:
        return self.population if self.warmup is None else self.warmup


class RegularizedEvolution(Controller):
    """Aging evolution with tournament selection (Real et al. 2019)."""

    name = "evolution"
    settings_cls = EvolutionSettings

    def __init__(self, space, seed: int = 0, constraint=None, settings: EvolutionSettings | None = None, *, key=None,
                 budget: int | None = None) -> None:
        super().__init__(space, seed=seed, constraint=constraint, settings=settings, key=key, budget=budget)
        self._population: deque[tuple[Genotype, float]] = deque()
        self._random = self._mutants = 0

    def _propose(self) -> tuple[Genotype, dict]:
        s = self.settings
        if len(self._population) < s.warmup_size:
            return self._constrained(lambda: self.space.sample(self._rng), "random sample"), {"kind": "random"}
        parent = self._tournament()
        child = self._constrained(lambda: self.space.mutate(parent, self._rng, num=s.mutations), "mutation")
        return child, {"kind": "mutant"}

    def _info_for(self, genotype: Genotype, kind: str) -> dict:
        return {"kind": kind}

    def _accepted(self, genotype: Genotype, info: dict) -> None:
        if info["kind"] == "random":
            self._random += 1
        elif info["kind"] == "mutant":
            self._mutants += 1

    def _tournament(self) -> Genotype:
        picks = self._rng.integers(len(self._population), size=self.settings.sample)
        best = max(picks.tolist(), key=lambda i: (self._population[i][1], -i))  # ties: the older member
        return self._population[best][0]

    def _observe(self, genotype: Genotype, reward: float | None, info: dict) -> None:
        if reward is None:
            return
        self._population.append((genotype, reward))
        while len(self._population) > self.settings.population:
            self._population.popleft()

    @property
    def population(self) -> list[tuple[Genotype, float]]:
        """The current population, oldest first."""
        return list(self._population)

    def _core_stats(self) -> dict[str, float]:
        rewards = np.array([r for _, r in self._population]) if self._population else np.array([np.nan])
        return {"population": float(len(self._population)), "population_best": float(np.max(rewards)),
                "population_mean": float(np.mean(rewards)), "random_proposals": float(self._random),
                "mutant_proposals": float(self._mutants)}

    def _core_state(self) -> dict[str, Any]:
        return {"population": [{"genotype": self.space.encode(g), "reward": r} for g, r in self._population],
                "random": self._random, "mutants": self._mutants}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self._population = deque((self.space.decode(m["genotype"]), float(m["reward"])) for m in state["population"])
        self._random, self._mutants = int(state["random"]), int(state["mutants"])
