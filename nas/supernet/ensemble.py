"""An ensemble of supernets (``supernet.ensemble: K``): a path's score is the mean of the members' accuracies.

Supernets trained with different seeds rank networks differently (on NAS-Bench-Macro, three 16 px
supernets of one recipe agree with each other on the reward at Kendall tau 0.18-0.36), and the scatter is the
larger part of their error against the converged truth; averaging independently trained models
cancels it (deep ensembles: Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS).  Member 0 is the
checkpoint a search names (``evaluator.checkpoint``); members ``k >= 1`` were trained with seed
``seed + k`` into ``<stem>-member<k>.pt`` beside it (:func:`nas.experiment.supernet.member_path`).
The data is loaded once and shared; each member recalibrates its own batch norms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from search_spaces import Genotype

from ..experiment.supernet import member_path
from .checkpoint import read_checkpoint

#: Checkpoint facts every member shares with member 0 (the recipe may differ in seed and file name only).
SHARED = ("space", "arch", "data", "proxy")


def check_members(path: str | Path, meta: dict[str, Any]) -> list[Path]:
    """The member checkpoints of member 0 at ``path`` (``meta`` its metadata): each present, finished and of
    the same supernet; a ValueError naming the member and the fix otherwise."""
    members = int((meta.get("supernet") or {}).get("ensemble", 1))
    paths = [member_path(path, k) for k in range(1, members)]
    for k, member in enumerate(paths, start=1):
        fix = "finish its training: nas supernet train RUN_DIR --resume"
        if not member.is_file():
            raise ValueError(f"member {k} of the {members}-supernet ensemble, {str(member)!r}, is missing; {fix}")
        theirs = read_checkpoint(member)["meta"]
        for key in SHARED:
            if theirs.get(key) != meta.get(key):
                raise ValueError(f"member {k} of the ensemble, {str(member)!r}, differs from {str(path)!r} in its "
                                 f"{key}; retrain the ensemble with one config")
        if int(theirs["epoch"]) < int(theirs["epochs"]):
            raise ValueError(f"member {k} of the ensemble, {str(member)!r}, has trained {theirs['epoch']} of "
                             f"{theirs['epochs']} epochs; {fix}")
    return paths


class EnsembleScorer:
    """``score``/``score_many`` of several :class:`~nas.supernet.evaluate.SupernetScorer` s, averaged."""

    def __init__(self, members: list) -> None:
        self.members = members
        first = members[0]
        self.net, self.meta, self.data, self.device = first.net, first.meta, first.data, first.device

    def score(self, genotype: Genotype):
        return self._mean([m.score(genotype) for m in self.members])

    def score_many(self, genotypes: Iterable[Genotype]) -> list:
        genotypes = list(genotypes)
        per_member = [m.score_many(genotypes) for m in self.members]
        return [self._mean(list(scores)) for scores in zip(*per_member)]

    @staticmethod
    def _mean(scores: list):
        failed = next((s for s in scores if not s.ok), None)
        if failed is not None:
            return failed
        first = scores[0]
        accuracies = [float(s.accuracy) for s in scores]
        info = dict(first.info, member_accuracies=accuracies)
        if "score_s" in info:
            info["score_s"] = sum(float(s.info.get("score_s", 0.0)) for s in scores)
        return type(first)("ok", accuracy=sum(accuracies) / len(accuracies), info=info)


__all__ = ["EnsembleScorer", "SHARED", "check_members"]
