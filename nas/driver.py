"""The Ray Tune driver: the only module of nas/ that imports Ray.  One job: run a ``tune.Tuner``.

Two entry points share one helper (``_fit``):

* ``run_search(experiment)``: the experiment's controller, behind
  :class:`controllers.ray_searcher.ControllerSearcher` and limited to
  ``max_concurrent`` pending trials, proposes ``budget.samples`` genotypes;
* ``run_scale_grid(experiment, genotype, grid)``: every (alpha, beta, gamma) of
  ``grid`` scales one genotype (EfficientNet's step 1, ``nas.search.scale_grid``),
  no controller involved.

Either way each trial is the proxy trial (``nas.search.trial.run_trial``) as a
function trainable that reports every epoch (so ASHA can stop weak candidates
early) and a final result, wrapped in ``tune.with_resources`` (CPUs and a GPU
fraction, so several trials share one GPU) and run in long-lived, reused
workers (``reuse_actors``).  A ``RunConfig`` holds the storage path and name,
``FailureConfig`` and a callback that settles every finished trial into one
``TrialResult`` (``nas.search.trial.settle``) and hands it to the recorder
(``nas.search.recorder``); the searcher tells the controller by the same rule.

Without ``address`` a local Ray is started (``address="local"``: never joins a
stale one) and stopped by the program; with ``address`` the run joins an
existing cluster (``auto`` on a head node).  ``resume=True`` restores the
Tuner from the run dir: finished trials are kept, the controller state comes
back from the searcher checkpoint, unfinished trials run again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from controllers.ray_searcher import GENOTYPE_KEY, ControllerSearcher
from efficientnet.compound import CompoundCoefficients
from search_spaces import Genotype

from .experiment import Experiment, build_controller, check_run_dir, resolved_yaml, scaled_experiment
from .proxy.config import for_gpu_share
from .search import results
from .search.recorder import TrialRecorder
from .search.trial import RUNNING, TrialResult, reward_to_tell, settle

logger = logging.getLogger(__name__)

#: ``trial_fn(genotype, experiment, on_epoch) -> TrialResult``: the work of one trial; its ``on_epoch``
#: metrics carry ``epoch``, ``accuracy`` and ``reward`` (what ASHA and the searcher read), as ``run_trial``'s do.
TrialFn = Callable[[Genotype, Experiment, Callable[[dict], Any]], TrialResult]
SCALE_KEY = "scale"
#: A verification trial's proxy seed (``run_verification``).
SEED_KEY = "seed"


def proxy_trial(genotype: Genotype, experiment: Experiment, on_epoch: Callable[[dict], Any]) -> TrialResult:
    """The default trial: train ``genotype`` on the proxy task (never raises for a bad candidate)."""
    from .search.trial import run_trial

    return run_trial(genotype, experiment.proxy, experiment.data, experiment.objective, experiment.target,
                     on_epoch=on_epoch)


def _trainable(config: dict, experiment: Experiment, trial_fn: TrialFn | None = None) -> None:
    """The Tune function trainable: one genotype, a report per epoch, a final report of its TrialResult."""
    import torch

    torch.set_num_threads(max(1, int(experiment.resources.cpus_per_trial)))
    genotype = Genotype.from_string(config[GENOTYPE_KEY])
    scale = config.get(SCALE_KEY) or {}
    if scale:
        experiment = scaled_experiment(experiment, CompoundCoefficients(**scale))
    if config.get(SEED_KEY) is not None:
        experiment = dataclasses.replace(experiment, proxy=dataclasses.replace(experiment.proxy,
                                                                               seed=int(config[SEED_KEY])))
    proxy = for_gpu_share(experiment.proxy, experiment.resources.gpus_per_trial)
    if proxy is not experiment.proxy:
        experiment = dataclasses.replace(experiment, proxy=proxy)
    where = {**scale, "node_id": ray.get_runtime_context().get_node_id()}
    last_epoch = experiment.proxy.epochs

    def on_epoch(metrics: dict) -> None:
        # The last epoch is reported once, by the final report: ASHA stops a trial at max_t, and a stop
        # on a per-epoch report would lose the final result of a trial that ran to its end.
        if metrics["epoch"] < last_epoch:
            tune.report({**metrics, **where, "status": RUNNING, "done": False})

    result = (trial_fn or proxy_trial)(genotype, experiment, on_epoch)
    tune.report({**result.to_dict(), "epoch": result.epochs, **where, "done": True})


class _RecordTrials(Callback):
    """Settles each finished trial into a TrialResult and hands it to the recorder (pickled with the Tuner)."""

    def __init__(self, recorder: TrialRecorder, searcher: ControllerSearcher | None) -> None:
        self.recorder = recorder
        self.searcher = searcher

    def _record(self, trial, error: str | None) -> None:
        last = dict(trial.last_result or {})
        result = settle(trial.config.get(GENOTYPE_KEY), last, error)
        extra = {**(trial.config.get(SCALE_KEY) or {}), **({"node_id": last["node_id"]} if "node_id" in last else {}),
                 **({SEED_KEY: trial.config[SEED_KEY]} if trial.config.get(SEED_KEY) is not None else {})}
        controller = getattr(self.searcher, "controller", None)
        self.recorder.record(trial.trial_id, result, extra, controller.stats() if controller is not None else None)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, _error_reason(trial))

    def on_experiment_end(self, trials: list, **info) -> None:
        self.recorder.close()


def _error_reason(trial) -> str:
    """The last ``SomeError: message`` line of the trial's error trace (what the user needs first)."""
    text = None
    for read in (trial.get_error, lambda: Path(trial.error_file).read_text() if trial.error_file else None):
        try:
            text = read()
        except Exception as err:  # noqa: BLE001 - the reason is informational
            logger.debug("could not read the error of trial %s: %s", trial.trial_id, err)
        if text:
            break
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Interrupt")) and " " not in head:
            return line[:500]
    return lines[-1][:500] if lines else "the trial raised (no error trace was stored)"


@dataclass
class SearchOutcome:
    run_dir: Path
    trials: int
    failed: int
    best: dict | None
    pareto: list[dict]


def _start_ray(experiment: Experiment, address: str | None) -> bool:
    """Connect to ``address`` or start a local Ray; returns whether we started it."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # keep the resumable state fresh
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return False
    address = address or experiment.ray.address
    if address:
        logger.info("joining the Ray cluster at %s", address)
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return True
    r = experiment.resources
    ray.init(address="local", num_cpus=r.num_cpus, num_gpus=r.num_gpus, include_dashboard=experiment.ray.dashboard,
             dashboard_host="127.0.0.1", logging_level=logging.WARNING, log_to_driver=False)
    return True


def _scheduler(experiment: Experiment) -> ASHAScheduler | None:
    s = experiment.scheduler
    if s.name != "asha":
        return None
    return ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max", max_t=max(experiment.proxy.epochs, 1),
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor)


def run_search(experiment: Experiment, resume: bool = False, address: str | None = None,
               progress: Callable[[str], None] | None = None, trial_fn: TrialFn | None = None) -> SearchOutcome:
    """Run (or resume) the controller search of ``experiment`` to the end; returns where and what it found."""
    total = experiment.budget.samples

    def tune_config() -> dict:
        searcher = ControllerSearcher(build_controller(experiment), metric="reward", mode="max", max_trials=total,
                                      recorded_ids=functools.partial(results.read_trial_ids, experiment.run_dir),
                                      reward_of=reward_to_tell)
        return dict(searcher=searcher, param_space=None,
                    search_alg=ConcurrencyLimiter(searcher, experiment.resources.max_concurrent),
                    num_samples=total, max_concurrent_trials=None)

    return _fit(experiment, resume, address, progress, trial_fn, total, tune_config)


def run_scale_grid(experiment: Experiment, genotype: Genotype, grid: list[dict[str, float]], resume: bool = False,
                   address: str | None = None, progress: Callable[[str], None] | None = None,
                   trial_fn: TrialFn | None = None) -> SearchOutcome:
    """Train ``genotype`` scaled by every ``{"alpha", "beta", "gamma"}`` of ``grid`` (one trial each)."""
    def tune_config() -> dict:
        return dict(searcher=None, param_space={GENOTYPE_KEY: genotype.to_string(), SCALE_KEY: tune.grid_search(grid)},
                    search_alg=None, num_samples=1, max_concurrent_trials=experiment.resources.max_concurrent)

    return _fit(experiment, resume, address, progress, trial_fn, len(grid), tune_config)


def run_verification(experiment: Experiment, genotypes: list[str], seeds: list[int], resume: bool = False,
                     address: str | None = None, progress: Callable[[str], None] | None = None,
                     trial_fn: TrialFn | None = None) -> SearchOutcome:
    """Retrain every genotype of ``genotypes`` standalone with the proxy recipe once per seed (one trial each)."""
    def tune_config() -> dict:
        return dict(searcher=None, param_space={GENOTYPE_KEY: tune.grid_search(list(genotypes)),
                                                SEED_KEY: tune.grid_search(list(seeds))},
                    search_alg=None, num_samples=1, max_concurrent_trials=experiment.resources.max_concurrent)

    return _fit(experiment, resume, address, progress, trial_fn, len(genotypes) * len(seeds), tune_config)


@contextlib.contextmanager
def ray_session(experiment: Experiment, address: str | None = None) -> Iterator[None]:
    """One Ray for several stages (search, baseline, verification): started here unless one is running."""
    started = _start_ray(experiment, address)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def _fit(experiment: Experiment, resume: bool, address: str | None, progress: Callable[[str], None] | None,
         trial_fn: TrialFn | None, total: int, tune_config: Callable[[], dict]) -> SearchOutcome:
    """Start (or restore) the Tuner, run it to the end, summarise the run dir."""
    run_dir = experiment.run_dir
    check_run_dir(experiment, resume)
    if resume and not tune.Tuner.can_restore(experiment.tune_path):  # remote storage: only Ray can tell
        raise FileNotFoundError(f"--resume: no search state at {experiment.tune_path!r}; run without --resume "
                                "to start it")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / results.CONFIG).write_text(resolved_yaml(experiment), encoding="utf-8")
    started = _start_ray(experiment, address)
    try:
        r = experiment.resources
        trainable = tune.with_parameters(_trainable, experiment=experiment, trial_fn=trial_fn)
        trainable = tune.with_resources(trainable, {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial})
        if resume:
            tuner = tune.Tuner.restore(experiment.tune_path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            c = tune_config()
            callback = _RecordTrials(TrialRecorder(run_dir, total, progress), c["searcher"])
            tuner = tune.Tuner(
                trainable, param_space=c["param_space"],
                tune_config=tune.TuneConfig(search_alg=c["search_alg"], scheduler=_scheduler(experiment),
                                            num_samples=c["num_samples"],
                                            max_concurrent_trials=c["max_concurrent_trials"],
                                            reuse_actors=experiment.ray.reuse_actors,
                                            time_budget_s=experiment.budget.time_limit_s),
                run_config=tune.RunConfig(
                    name=experiment.output.name, storage_path=experiment.storage, callbacks=[callback], verbose=0,
                    failure_config=tune.FailureConfig(max_failures=experiment.ray.max_failures, fail_fast=False)),
            )
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    summary = results.write_summary(run_dir)
    return SearchOutcome(run_dir=run_dir, trials=summary["trials"], failed=summary["failed"], best=summary["best"],
                         pareto=summary["pareto"])
