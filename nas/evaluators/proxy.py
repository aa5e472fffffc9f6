"""The proxy evaluator: train each candidate's down-scaled network briefly, score its held-out accuracy.

MnasNet's evaluator (Tan et al. 2019, arXiv:1807.11626, section 5): every candidate is trained on a
proxy task (``nas.proxy.train``) and read on images held out of the training split.  Seconds to
minutes a candidate, so the session runs it as one Ray Tune trial per candidate (placement
``trials``: ASHA can stop weak candidates after an epoch, a trial whose worker died is retried).
:meth:`ProxyEvaluator.train` reports every epoch (with the reward at that epoch) to ``on_epoch``;
cost and reward come from :class:`~nas.evaluators.outcome.Scoring`, once per candidate.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from search_spaces import Genotype, resolve_genotype

from ..config import ConfigError
from ..cost.objective import ObjectiveConfig
from ..cost.target import TargetModel
from ..data import DataConfig, load_data
from ..experiment.load import check_data
from ..experiment.proxy import ProxyConfig
from ..experiment.search import Experiment
from .base import EvaluatorInfo, EvaluatorKind, binomial_noise
from .outcome import Scoring, TrialResult

log = logging.getLogger(__name__)


class ProxyEvaluator:
    """Trains each candidate with the ``proxy`` recipe on ``data``; the target's cost and the reward.

    Data and cost models are cached per process, so a long-lived worker builds it for every trial at
    no cost.  Never raises for a bad candidate: a build error, a NaN/inf loss or out-of-memory gives a
    ``failed`` result with the reason.  Configuration mistakes (missing dataset, unknown device) raise.
    """

    def __init__(self, proxy: ProxyConfig, data: DataConfig, objective: ObjectiveConfig,
                 target: TargetModel = TargetModel()) -> None:
        self.proxy, self.data = proxy, data
        self.scoring = Scoring(objective, target)

    @classmethod
    def from_experiment(cls, exp: Experiment) -> "ProxyEvaluator":
        return cls(exp.proxy, exp.data, exp.objective, exp.target)

    def train(self, genotype: Genotype | str, on_epoch: Callable[[dict], Any] | None = None) -> TrialResult:
        """Train ``genotype`` on the proxy task and score it.

        ``on_epoch(metrics)`` is called after every epoch with ``epoch``, ``accuracy``, ``loss``,
        ``images_per_s`` (+ ``lr``, ``train_s``, ``eval_s``) and the trial's ``reward``, ``cost``,
        ``params`` and ``macs`` at that epoch; returning True stops training early (the result stays
        ``ok`` with the epochs run).
        """
        from ..proxy.train import train_proxy

        start = time.perf_counter()
        genotype = resolve_genotype(genotype) if isinstance(genotype, str) else genotype
        if not isinstance(genotype, Genotype):
            raise TypeError(f"the proxy evaluator needs a Genotype or a genotype string, got {type(genotype).__name__}")
        text = genotype.to_string()
        dataset = load_data(self.data)
        try:
            counts = self.scoring.counts(text)
        except Exception as err:  # a candidate the target cannot be built or costed for
            return self.scoring.failed(text, f"cost failed: {type(err).__name__}: {err}", start)

        def report(metrics: dict) -> Any:
            return on_epoch({**metrics, "reward": self.scoring.epoch_reward(metrics["accuracy"], counts["cost"]),
                             **counts})

        outcome = train_proxy(genotype, self.proxy, dataset, report if on_epoch is not None else None)
        extra = dict(epochs=outcome.epochs, proxy_params=outcome.proxy_params, proxy_macs=outcome.proxy_macs,
                     history=outcome.history, images_per_s=outcome.images_per_s)
        if outcome.status != "ok":
            return self.scoring.failed(text, outcome.reason, start, **counts, **extra)
        result = self.scoring.result(text, outcome.accuracy, start, counts, **extra)
        log.info("trial %s: accuracy %.4f, reward %.4f, %d epochs, %.1fs", result.status, result.accuracy,
                 result.reward, result.epochs, result.wall_s)
        return result

    def score(self, genotypes: Sequence[Genotype | str]) -> list[TrialResult]:
        return [self.train(g) for g in genotypes]


def run_trial(genotype: Genotype | str, proxy: ProxyConfig, data: DataConfig, objective: ObjectiveConfig,
              target: TargetModel = TargetModel(), on_epoch: Callable[[dict], Any] | None = None) -> TrialResult:
    """One proxy trial outside a search (``nas train-proxy``, the benches): :meth:`ProxyEvaluator.train`."""
    return ProxyEvaluator(proxy, data, objective, target).train(genotype, on_epoch)


def check_device(device: str, path: str, address: str | None, gpus: float | None = None,
                 gpus_path: str = "resources.gpus_per_trial") -> None:
    """A ``cuda`` device must exist: on this machine (no ``address``), or as GPUs asked of the cluster."""
    if not str(device).startswith("cuda"):
        return
    if not address:
        _check_local_cuda(device, path)
    if gpus is not None and gpus <= 0:
        raise ConfigError(f"{path}: {device} needs a GPU per worker; set {gpus_path} (e.g. 1 or 0.25) or "
                          f"{path}: auto")


def _check_local_cuda(device: str, path: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{path}: {device}, but this machine has no CUDA GPU; set {path}: cpu (or auto), or join "
                          "a GPU cluster with --address")
    index = int(str(device).partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ConfigError(f"{path}: {device}, but this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0..cuda:{torch.cuda.device_count() - 1}); pick one of those or auto")


def check(exp: Experiment, address: str | None = None) -> EvaluatorInfo:
    """Before any trial: the device exists, and the data loads (the last check: it logs what it read)."""
    check_device(exp.proxy.device, "proxy.device", address or exp.ray.address, exp.resources.gpus_per_trial)
    data = check_data(exp.data)
    if data is None:
        return EvaluatorInfo(description="proxy training")
    images = len(data.y_test) if exp.proxy.evaluate_on == "test" else len(data.y_holdout)
    chance = 1.0 / data.num_classes
    return EvaluatorInfo(chance=chance, noise=binomial_noise(chance, images),
                         description=f"proxy training ({exp.proxy.epochs} epochs, {images} held-out images)")


KIND = EvaluatorKind("proxy", check=check, build=ProxyEvaluator.from_experiment, placement=lambda exp: "trials",
                     accuracy_label="trained standalone (proxy recipe, one run)")

__all__ = ["KIND", "ProxyEvaluator", "check", "check_device", "run_trial"]
