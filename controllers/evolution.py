"""Regularized (aging) evolution, Real et al. 2019 (AAAI, arXiv:1802.01548), Algorithm 1.

* Sizes: ``population`` P and tournament ``sample`` S default to the controller's ``budget`` hint
  (P = budget/6 within [8, 64], S = P/4; P = 64 without a hint), see :func:`population_for`.
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


#: Evolution's sizes without a budget hint, and the share of the budget the population takes with one.
DEFAULT_POPULATION = 64
BUDGET_SHARE = 6


def population_for(budget: int | None) -> int:
    """The default population: ``budget // 6`` within [8, 64] (16 for 100 samples), 64 without a budget.

    Real et al. use P=100, S=25 for 20,000 samples; a population of 64 makes the first 64 proposals of a
    100-sample search uniform draws (issue 20: random search until sample 64).  A sixth of the budget
    leaves five sixths to evolution; on NAS-Bench-Macro population 16, tournament 4 reaches the top 1%
    in half the samples of 64/16 (bench/controllers_table.py).
    """
    if budget is None:
        return DEFAULT_POPULATION
    return max(8, min(DEFAULT_POPULATION, budget // BUDGET_SHARE))


@dataclass(frozen=True)
class EvolutionSettings(ProposalSettings):
    """``population`` P, tournament ``sample`` S, ``mutations`` per child, ``warmup`` (None = P).

    ``population`` None (default): sized by the controller's ``budget`` hint (:func:`population_for`);
    ``sample`` None: P/4, the paper's S/P = 1/4 (P=100, S=25 for 20k samples).
    """

    population: int | None = None
    sample: int | None = None
    mutations: int = 1
    warmup: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "EvolutionSettings"
        if self.population is not None:
            check_int(owner, "population", self.population, 2)
        if self.sample is not None:
            check_int(owner, "sample", self.sample, 1)
        check_int(owner, "mutations", self.mutations, 1)
        if self.sample is not None and self.population is not None and self.sample > self.population:
            raise ValueError(f"{owner}.sample must be <= population ({self.population}), got {self.sample}; "
                             "the paper uses e.g. population 100, sample 25")
        if self.warmup is not None:
            check_int(owner, "warmup", self.warmup, 1)
            if self.population is not None and self.warmup > self.population:
                raise ValueError(f"{owner}.warmup must be <= population ({self.population}), got {self.warmup}; "
                                 "the population never holds more members, so evolution would never start")

    def sizes(self, budget: int | None) -> tuple[int, int, int]:
        """(population, tournament sample, warm-up) for a search of ``budget`` samples (None: unknown)."""
        population = population_for(budget) if self.population is None else self.population
        warmup = population if self.warmup is None else min(self.warmup, population)
        sample = max(1, population // 4) if self.sample is None else min(self.sample, population)
        return population, sample, warmup


class RegularizedEvolution(Controller):
    """Aging evolution with tournament selection (Real et al. 2019)."""

    name = "evolution"
    settings_cls = EvolutionSettings

    def __init__(self, space, seed: int = 0, constraint=None, settings: EvolutionSettings | None = None, *, key=None,
                 budget: int | None = None, noise: float | None = None) -> None:
        super().__init__(space, seed=seed, constraint=constraint, settings=settings, key=key, budget=budget,
                         noise=noise)
        self.population_size, self.tournament_size, self.warmup_size = self.settings.sizes(self.budget)
        self._population: deque[tuple[Genotype, float]] = deque()
        self._rewards: np.ndarray | None = None
        self._random = self._mutants = 0

    def _settings_adopted(self) -> None:
        self.population_size, self.tournament_size, self.warmup_size = self.settings.sizes(self.budget)

    def _propose(self) -> tuple[Genotype, dict]:
        s = self.settings
        if len(self._population) < self.warmup_size:
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
        picks = self._rng.integers(len(self._population), size=self.tournament_size)
        if self._rewards is None:  # the population's rewards as an array, rebuilt after it changes
            self._rewards = np.fromiter((r for _, r in self._population), float, len(self._population))
        drawn = self._rewards[picks]
        best = int(picks[drawn == drawn.max()].min())  # the best drawn; ties: the older member
        return self._population[best][0]

    def _observe(self, genotype: Genotype, reward: float | None, info: dict) -> None:
        if reward is None:
            return
        self._population.append((genotype, reward))
        while len(self._population) > self.population_size:
            self._population.popleft()
        self._rewards = None

    @property
    def population(self) -> list[tuple[Genotype, float]]:
        """The current population, oldest first."""
        return list(self._population)

    def _core_stats(self) -> dict[str, float]:
        rewards = np.array([r for _, r in self._population]) if self._population else np.array([np.nan])
        return {"population": float(len(self._population)), "population_size": float(self.population_size),
                "tournament_size": float(self.tournament_size), "population_best": float(np.max(rewards)),
                "population_mean": float(np.mean(rewards)), "random_proposals": float(self._random),
                "mutant_proposals": float(self._mutants)}

    def _core_state(self) -> dict[str, Any]:
        return {"population": [{"genotype": self.space.encode(g), "reward": r} for g, r in self._population],
                "random": self._random, "mutants": self._mutants}

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self._population = deque((self.space.decode(m["genotype"]), float(m["reward"])) for m in state["population"])
        self._rewards = None
        self._random, self._mutants = int(state["random"]), int(state["mutants"])
