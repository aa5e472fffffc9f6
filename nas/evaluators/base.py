"""The one evaluator protocol: what scores a candidate, what it needs to start, where it runs.

An evaluator turns genotypes into :class:`~nas.evaluators.outcome.TrialResult` s, one each, in order,
and never raises for a bad candidate (a failure is a ``failed`` result with its reason)::

    class Evaluator(Protocol):
        def score(self, genotypes: Sequence[Genotype | str]) -> list[TrialResult]: ...

It is built once in the process that scores (the driver, a long-lived worker, a Ray Tune trial):
data, weights or a table are loaded in ``build`` and reused for every batch.  An
:class:`EvaluatorKind` says, for the ``evaluator.kind`` of an experiment,

* ``check(experiment, address)``: everything it needs, checked in the driver before any slow work
  (no Ray, no workers): files, checkpoint metadata and tensor shapes, devices this machine has.
  Returns an :class:`EvaluatorInfo` (chance accuracy and the evaluator's own noise, for the
  meaningless-result warnings, and warnings found already);
* ``build(experiment)``: the evaluator itself;
* ``placement(experiment)``: where the session scores -- ``driver`` (in the session's own process,
  in batches: no Ray at all; microseconds to milliseconds a candidate), ``workers`` (long-lived Ray
  actors, each holding one built evaluator, in batches) or ``trials`` (one Ray Tune trial per
  candidate: per-candidate training with ASHA and trial-level fault tolerance).

The session (``nas.search.session``) owns everything else -- controller, budget, time limit,
failures, recorder, resume state, progress, interrupts -- the same for every kind.  A new evaluator
is a module with a ``KIND`` added to :data:`KINDS` (and its name to ``EvaluatorConfig.kind``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Protocol, Sequence

from search_spaces import Genotype

from ..experiment.search import Experiment
from .outcome import TrialResult

Placement = Literal["driver", "workers", "trials"]


class Evaluator(Protocol):
    """Scores a batch of genotypes: one :class:`TrialResult` each, in order; never raises for a bad candidate."""

    def score(self, genotypes: Sequence[Genotype | str]) -> list[TrialResult]: ...


@dataclass(frozen=True)
class EvaluatorInfo:
    """What the driver knows about an evaluator before the search: for the meaningless-result warnings.

    ``chance``: the accuracy of guessing (1 / classes); ``noise``: the standard deviation of one
    candidate's accuracy from the evaluator's own randomness (e.g. the binomial error of a held-out
    set of n images); ``warnings``: lines to print at the start of the search and put in the report;
    ``known_noise``: the standard deviation of a told accuracy around the value the search is judged by, when
    the evaluator knows it (a table drawing one recorded training: the spread of the table's trainings; 0: an
    exact evaluator; None: unknown) -- passed to the controller as its ``noise`` hint.
    """

    chance: float | None = None
    noise: float | None = None
    known_noise: float | None = None
    warnings: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class EvaluatorKind:
    name: str
    check: Callable[[Experiment, str | None], EvaluatorInfo]
    build: Callable[[Experiment], Evaluator]
    placement: Callable[[Experiment], Placement]
    #: What a search reward of this kind is, in the report's words (``inherited weights + BN recalibration``).
    accuracy_label: str = field(default="")


def binomial_noise(accuracy: float, images: int) -> float:
    """The standard deviation of an accuracy measured on ``images`` independent images."""
    accuracy = min(max(accuracy, 0.0), 1.0)
    return (accuracy * (1.0 - accuracy) / max(1, images)) ** 0.5


__all__ = ["Evaluator", "EvaluatorInfo", "EvaluatorKind", "Placement", "binomial_noise"]
