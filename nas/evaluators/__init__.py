"""What scores a candidate: one protocol, three kinds of evaluator (floor 6 of nas/).

* ``base``: the :class:`Evaluator` protocol (``score(genotypes) -> one TrialResult each``), the
  :class:`EvaluatorKind` (``check`` before slow work, ``build`` where it scores, ``placement``) and
  :class:`EvaluatorInfo` (chance and noise, for the meaningless-result warnings);
* ``outcome``: the one typed result (:class:`TrialResult`), the ok/failed/stopped rule (``settle``)
  and :class:`Scoring`, the one place cost and reward are computed;
* ``proxy``: train each candidate (one Ray Tune trial each); ``supernet``: score a path of a trained
  supernet (long-lived workers, or the driver); ``table``: look it up in a converged benchmark table
  (the driver).

:func:`get_kind` maps ``evaluator.kind`` to its :class:`EvaluatorKind`.  No Ray here: where a
placement needs Ray, ``nas.ray`` runs it.
"""

from __future__ import annotations

from ..config import ConfigError
from .base import Evaluator, EvaluatorInfo, EvaluatorKind, Placement
from .outcome import Scoring, TrialResult, settle
from .proxy import KIND as PROXY
from .supernet import KIND as SUPERNET
from .table import KIND as TABLE

#: ``evaluator.kind`` -> its kind.  A new evaluator: a module with a ``KIND``, listed here.
KINDS: dict[str, EvaluatorKind] = {k.name: k for k in (PROXY, SUPERNET, TABLE)}


def get_kind(name: str) -> EvaluatorKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(f"evaluator.kind: {name!r} is not an evaluator; choose one of {', '.join(KINDS)}") from None


__all__ = ["Evaluator", "EvaluatorInfo", "EvaluatorKind", "KINDS", "Placement", "Scoring", "TrialResult", "get_kind",
           "settle"]
