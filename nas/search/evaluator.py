"""How a search scores a candidate (``evaluator:``), and what verifies its result (``baseline:``, ``verify:``).

Two evaluators, the same controllers, objective, cost models and outputs:

* ``proxy`` (default): every candidate is trained standalone on the proxy task,
  one Ray Tune trial each (``nas.driver.run_search``; seconds to minutes a candidate);
* ``supernet``: a candidate is a path of a trained weight-sharing supernet
  (``nas supernet train``), scored with inherited weights after BatchNorm
  recalibration (``nas.supernet.SupernetEvaluator``; a fraction of a second).
  Scoring is done by ``nas.supernet.trials.SupernetTrialScorer`` objects held by long-lived
  workers (``nas.actor_pool``) that load the supernet and data once; the driver
  runs the controller's ask/tell loop itself (``nas.search.loop``).

Either way a candidate's outcome is one :class:`~nas.search.trial.TrialResult`
(accuracy of the proxy-size network, params/MACs/cost of the TARGET model,
MnasNet's reward), recorded by the same recorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import ConfigError


@dataclass(frozen=True)
class EvaluatorConfig:
    """YAML section ``evaluator``: what scores a candidate during the search."""

    kind: Literal["proxy", "supernet"] = "proxy"
    #: supernet: the checkpoint ``nas supernet train`` wrote (``<run dir>/supernet.pt``).
    checkpoint: str | None = None
    #: supernet: long-lived scoring workers (each holds the supernet and the data).
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    #: supernet: genotypes a worker scores per call (amortises the call's overhead).
    batch: int = 8
    #: supernet: BN recalibration batches (null: the checkpoint's ``supernet.calib_batches``).
    calib_batches: int | None = None
    device: str = "auto"

    def check(self) -> None:
        if self.kind == "supernet" and not self.checkpoint:
            raise ConfigError("evaluator.checkpoint: required with evaluator.kind 'supernet'; give the supernet.pt "
                              "that `nas supernet train CONFIG` wrote")
        if self.kind == "proxy" and self.checkpoint:
            raise ConfigError("evaluator.checkpoint: only used with evaluator.kind 'supernet' (got kind 'proxy'); "
                              "set evaluator.kind=supernet or drop the checkpoint")
        for name in ("workers", "batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"evaluator.{name}: must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.cpus_per_worker > 0 and not self.gpus_per_worker > 0:
            raise ConfigError(f"evaluator.cpus_per_worker: must be > 0, got {self.cpus_per_worker!r}")
        if self.gpus_per_worker < 0:
            raise ConfigError(f"evaluator.gpus_per_worker: must be >= 0, got {self.gpus_per_worker!r}")
        if self.calib_batches is not None and self.calib_batches < 1:
            raise ConfigError(f"evaluator.calib_batches: must be >= 1 or null, got {self.calib_batches!r}")


@dataclass(frozen=True)
class VerifyConfig:
    """YAML section ``verify``: the top-k genotypes retrained standalone with the proxy recipe, per seed.

    ``top_k: 0`` skips verification.  ``reference`` (a genotype name or string, null for none) is
    retrained with the same seeds as the reference line of the summary.
    """

    top_k: int = 3
    seeds: tuple[int, ...] = (0, 1)
    reference: str | None = "b0"

    def check(self) -> None:
        if self.top_k < 0:
            raise ConfigError(f"verify.top_k: must be an integer >= 0 (0 skips verification), got {self.top_k!r}")
        if self.top_k and not self.seeds:
            raise ConfigError("verify.seeds: give at least one seed (e.g. [0, 1, 2]) or set verify.top_k=0")
        if len(set(self.seeds)) != len(self.seeds) or any(s < 0 for s in self.seeds):
            raise ConfigError(f"verify.seeds: distinct integers >= 0, got {list(self.seeds)!r}")
        if self.reference is not None:
            from search_spaces import resolve_genotype

            try:
                resolve_genotype(self.reference)
            except ValueError as err:
                raise ConfigError(f"verify.reference: {err}") from None


__all__ = ["EvaluatorConfig", "VerifyConfig"]
