"""The supernet evaluator: a candidate is a path of a trained weight-sharing supernet, scored in milliseconds.

Built once per process that scores (a long-lived Ray worker, or the driver with ``evaluator.workers:
0``): the supernet's weights and the data are loaded once (``nas.supernet.evaluate.SupernetScorer``:
BN recalibration on fixed training batches, held-out accuracy of the path), then batches of genotypes
are scored; cost and reward come from :class:`~nas.evaluators.outcome.Scoring`, as a proxy trial's.

:func:`check` runs in the driver before any slow work: the checkpoint's path, format, metadata and
tensor shapes, and that it fits the experiment -- space, data (its held-out images are the ones the
supernet never trained on), the proxy size (width, depth, resolution, stem stride: verification
retrains at the experiment's size) -- each mismatch one line.  It also says what would make the
search meaningless: a supernet whose largest path scored at chance level when it was trained.
"""

from __future__ import annotations

import time
from typing import Sequence

from search_spaces import Genotype

from ..config import ConfigError, from_dict, to_dict
from ..data import DataConfig
from ..experiment.load import check_data
from ..experiment.search import Experiment
from ..experiment.space import resolve_space
from .base import EvaluatorInfo, EvaluatorKind, binomial_noise
from .outcome import Scoring, TrialResult
from .proxy import check_device

#: The proxy-size fields a supernet is built at; verification retrains candidates at the experiment's.
SIZE_FIELDS = ("width", "depth", "resolution", "stem_stride")


class SupernetEvaluator:
    """Scores genotypes with a supernet checkpoint: one :class:`TrialResult` each, never an exception."""

    def __init__(self, checkpoint: str, objective, target, calib_batches: int | None = None, device: str = "auto",
                 threads: int = 1) -> None:
        import torch

        from ..supernet.evaluate import SupernetScorer

        torch.set_num_threads(max(1, int(threads)))
        self.scorer = SupernetScorer.from_checkpoint(checkpoint, calib_batches=calib_batches, device=device)
        self.scoring = Scoring(objective, target)

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "SupernetEvaluator":
        ev = exp.evaluator
        return cls(ev.checkpoint, exp.objective, exp.target, ev.calib_batches, ev.device,
                   threads=max(1, int(ev.cpus_per_worker)))

    def score_one(self, text: str) -> TrialResult:
        start = time.perf_counter()
        try:
            genotype = Genotype.from_string(text)
            counts = self.scoring.counts(text)
        except Exception as err:  # a candidate the target cannot be built or costed for
            return self.scoring.failed(text, f"cost failed: {type(err).__name__}: {err}", start)
        score = self.scorer.score(genotype)
        if not score.ok:
            return self.scoring.failed(text, score.reason, start, **counts)
        return self.scoring.result(text, score.accuracy, start, counts, epochs=0,
                                   proxy_params=int(score.info.get("proxy_params", 0)),
                                   proxy_macs=int(score.info.get("proxy_macs", 0)))

    def score(self, genotypes: Sequence[Genotype | str]) -> list[TrialResult]:
        return [self.score_one(g if isinstance(g, str) else g.to_string()) for g in genotypes]


def _placement(exp: Experiment) -> str:
    return "workers" if exp.evaluator.workers > 0 else "driver"


def check(exp: Experiment, address: str | None = None) -> EvaluatorInfo:
    """The checkpoint fits the experiment (one line per mismatch); what the driver knows of its noise."""
    from ..supernet.checkpoint import check_shapes, read_checkpoint
    from ..supernet.ensemble import check_members

    ev = exp.evaluator
    if not ev.checkpoint:
        raise ConfigError("evaluator.checkpoint: required with evaluator.kind 'supernet'; give the supernet.pt that "
                          "`nas supernet train CONFIG` wrote")
    check_device(ev.device, "evaluator.device", address or exp.ray.address,
                 ev.gpus_per_worker if ev.workers else None, "evaluator.gpus_per_worker")
    try:
        payload = read_checkpoint(ev.checkpoint)
        check_shapes(payload, ev.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"evaluator.checkpoint: {err}") from None
    meta = payload["meta"]
    _check_fits(meta, exp)
    try:
        members = 1 + len(check_members(ev.checkpoint, meta))
    except ValueError as err:
        raise ConfigError(f"evaluator.checkpoint: {err}") from None
    data = check_data(exp.data)
    classes = int(meta["arch"].get("num_classes", 0))
    if data is not None and data.num_classes != classes:
        raise ConfigError(f"data: {data.num_classes} classes, but the supernet was trained for {classes}; use the "
                          "supernet's data section")
    images = len(data.y_holdout) if data is not None else 0
    chance = 1.0 / classes if classes else None
    noise = binomial_noise(chance, images) if chance and images else None
    return EvaluatorInfo(chance=chance, noise=noise, warnings=tuple(_trained_warnings(meta, chance, noise)),
                         description=f"supernet {ev.checkpoint} (epoch {meta['epoch']} of {meta['epochs']}, "
                                     f"{images} held-out images{_ensemble(members)})")


def _ensemble(members: int) -> str:
    return f", the mean of an ensemble of {members} supernets" if members > 1 else ""


def _check_fits(meta: dict, exp: Experiment) -> None:
    trained = resolve_space(meta["space"], "evaluator.checkpoint: its space")
    if trained != exp.search_space:
        mine = exp.search_space.name
        same = " (a declaration of the same name that differs)" if trained.name == mine else ""
        raise ConfigError(f"evaluator.checkpoint: the supernet is of space {trained.name!r}, the experiment searches "
                          f"{mine!r}{same}; use the supernet's space declaration or train a supernet of this space")
    try:
        trained_on = from_dict(DataConfig, meta["data"], "checkpoint data")
    except ConfigError as err:
        raise ConfigError(f"evaluator.checkpoint: its data section does not load ({err}); retrain the supernet") \
            from None
    if trained_on != exp.data:
        raise ConfigError(f"data: the supernet was trained on {to_dict(trained_on)}, the experiment has "
                          f"{to_dict(exp.data)}; use the supernet's data section (its held-out images are the "
                          "ones it never trained on)")
    arch = meta["arch"]
    wrong = [f"{k} {arch.get(k)!r} (experiment: proxy.{k} {getattr(exp.proxy, k)!r})" for k in SIZE_FIELDS
             if arch.get(k) != getattr(exp.proxy, k)]
    if wrong:
        raise ConfigError(f"proxy: the supernet was trained at {', '.join(wrong)}; the search would score at one "
                          "size and verification retrain at another -- set the experiment's proxy size to the "
                          "supernet's, or train a supernet at this size")


def _trained_warnings(meta: dict, chance: float | None, noise: float | None) -> list[str]:
    """A supernet whose largest path ended its training at chance level ranks nothing."""
    history = meta.get("history") or []
    if not history or chance is None:
        return []
    last = history[-1]
    best = max(last.get("accuracy_largest", 0.0), last.get("accuracy_smallest", 0.0))
    margin = 2 * (noise or 0.0)
    if best <= chance + margin:
        return [f"the supernet's largest path scored {best:.3f} held-out accuracy after {meta['epoch']} epoch(s), "
                f"chance level for {round(1 / chance)} classes is {chance:.3f}: its ranking of candidates means "
                "nothing; train it longer (supernet.epochs) or on more data"]
    return []


KIND = EvaluatorKind("supernet", check=check, build=SupernetEvaluator.from_experiment, placement=_placement,
                     accuracy_label="inherited supernet weights + BN recalibration")

__all__ = ["KIND", "SIZE_FIELDS", "SupernetEvaluator", "check"]
