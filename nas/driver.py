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
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from controllers.constraint import InfeasibleConstraintError
from controllers.ray_searcher import GENOTYPE_KEY, ControllerSearcher
from efficientnet.compound import CompoundCoefficients
from search_spaces import Genotype

from .errors import SearchInterrupted, SearchStopped
from .experiment import Experiment, build_controller, check_inputs, check_run_dir, resolved_yaml, scaled_experiment
from .files import atomic_write
from .ray_local import join_cluster, start_local_ray
from .proxy.config import for_gpu_share, set_trial_threads
from .search import results
from .search.recorder import TrialRecorder
from .search.resume import NEW_CONTROLLER, cause_of, search_time, seed_controller, time_left
from .search.resume import changes as resume_changes
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
    set_trial_threads(experiment.proxy, experiment.resources.cpus_per_trial)  # threads = the trial's CPUs
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
    final = result.to_dict()
    final.pop("history", None)  # the epochs were reported one by one; a list would flood Tune's TensorBoard logger
    tune.report({**final, "epoch": result.epochs, **where, "done": True})


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
    """Connect to ``address`` or start a local, loopback-only Ray; returns whether we started it."""
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")  # keep the resumable state fresh
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return False
    address = address or experiment.ray.address
    if address:
        join_cluster(address, experiment.ray.connect_timeout_s)
        return True
    r = experiment.resources
    start_local_ray(r.num_cpus, r.num_gpus, experiment.ray.dashboard)
    return True


def _scheduler(experiment: Experiment) -> ASHAScheduler | None:
    s = experiment.scheduler
    if s.name != "asha":
        return None
    return ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max", max_t=max(experiment.proxy.epochs, 1),
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor)


def run_search(experiment: Experiment, resume: bool = False, address: str | None = None,
               progress: Callable[[str], None] | None = None, trial_fn: TrialFn | None = None) -> SearchOutcome:
    """Run (or resume) the controller search of ``experiment`` to the end; returns where and what it found.

    ``resume``: Ray Tune's state is restored when there is one (unfinished trials run again); then, when
    ``trials.jsonl`` holds fewer trials than the budget (a grown budget, or Tune's state was lost), the
    search continues with a fresh controller that learned from every recorded trial.
    """
    total = experiment.budget.samples

    def tune_config(recorded: list[dict] = ()) -> dict:
        controller = build_controller(experiment)
        learned = seed_controller(controller, list(recorded)) if recorded else 0
        if recorded:
            logger.info("continuing with a fresh controller that learned from %d recorded trial(s)", learned)
        searcher = ControllerSearcher(controller, metric="reward", mode="max", max_trials=total,
                                      recorded_ids=functools.partial(results.read_trial_ids, experiment.run_dir),
                                      reward_of=reward_to_tell)
        searcher.unseen = len(recorded)  # recorded before this Tuner: they count against max_trials
        return dict(searcher=searcher, param_space=None,
                    search_alg=ConcurrencyLimiter(searcher, experiment.resources.max_concurrent),
                    num_samples=total - len(recorded), max_concurrent_trials=None)

    return _fit(experiment, resume, address, progress, trial_fn, total, tune_config, can_continue=True)


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
         trial_fn: TrialFn | None, total: int, tune_config: Callable[..., dict],
         can_continue: bool = False) -> SearchOutcome:
    """Start (or restore, then continue) the Tuner, run it to the end, summarise the run dir.

    Raises SearchInterrupted (Ctrl-C) or SearchStopped (repeated failures, an infeasible constraint)
    after the summary of what finished is written.
    """
    run_dir = experiment.run_dir
    check_run_dir(experiment, resume)
    check_inputs(experiment, address)
    changed = resume_changes(experiment) if resume else {}
    restore = resume and not set(changed) & set(NEW_CONTROLLER) and tune.Tuner.can_restore(experiment.tune_path)
    if resume and not restore and not can_continue:
        raise FileNotFoundError(f"--resume: no search state at {experiment.tune_path!r}; run without --resume "
                                "to start it")
    atomic_write(run_dir / results.CONFIG, resolved_yaml(experiment))
    r = experiment.resources
    trainable = tune.with_parameters(_trainable, experiment=experiment, trial_fn=trial_fn)
    trainable = tune.with_resources(trainable, {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial})
    recorders: list[TrialRecorder] = []
    interrupted = started = False
    try:
        started = _start_ray(experiment, address)
        if restore and time_left(experiment.budget.time_limit_s, results.read_trials(run_dir)) != 0.0:  # 0: the time limit is spent
            tuner = tune.Tuner.restore(experiment.tune_path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
            recorders = _relocate(tuner, experiment, progress, total)
            interrupted = _fit_watching_sigint(tuner)
        rows = results.read_trials(run_dir)
        left_s = time_left(experiment.budget.time_limit_s, rows)
        if not interrupted and not _stop_reason(recorders) and (not resume or can_continue and len(rows) < total
                                                                and (left_s is None or left_s > 0)):
            c = tune_config(rows) if resume else tune_config()
            recorder = TrialRecorder(run_dir, total, progress, elapsed_s=search_time(rows),
                                     stop_after_failures=experiment.budget.stop_after_failures)
            recorders = [recorder]
            tuner = tune.Tuner(
                trainable, param_space=c["param_space"],
                tune_config=tune.TuneConfig(search_alg=c["search_alg"], scheduler=_scheduler(experiment),
                                            num_samples=c["num_samples"],
                                            max_concurrent_trials=c["max_concurrent_trials"],
                                            reuse_actors=experiment.ray.reuse_actors, time_budget_s=left_s),
                run_config=tune.RunConfig(
                    name=experiment.output.name, storage_path=experiment.storage, verbose=0,
                    callbacks=[_RecordTrials(recorder, c["searcher"])], stop=_StopOnRepeatedFailure(recorder),
                    failure_config=tune.FailureConfig(max_failures=experiment.ray.max_failures, fail_fast=False)),
            )
            interrupted = _fit_watching_sigint(tuner)
    except KeyboardInterrupt:
        interrupted = True
    except Exception as err:  # noqa: BLE001 - only the controller's infeasible constraint is handled here
        infeasible = cause_of(err, InfeasibleConstraintError)
        if infeasible is None:
            raise
        summary = results.write_summary(run_dir)
        raise SearchStopped(f"search stopped after {summary['trials']} trial(s): {infeasible}; widen "
                            "controller.cost_min/cost_max or raise controller.max_tries, then continue with "
                            f"`nas search {run_dir} --resume --set controller.cost_max=...`") from None
    finally:
        if started:
            ray.shutdown()
    summary = results.write_summary(run_dir)
    if interrupted:
        raise SearchInterrupted(run_dir, summary["trials"], total)
    reason = _stop_reason(recorders)
    if reason:
        raise SearchStopped(reason)
    return SearchOutcome(run_dir=run_dir, trials=summary["trials"], failed=summary["failed"], best=summary["best"],
                         pareto=summary["pareto"])


def _relocate(tuner, experiment: Experiment, progress, total: int) -> list[TrialRecorder]:
    """Point the restored recorders at this run dir (it may have moved), this session's progress and budget.

    The callbacks come back pickled in Tune's ``tuner.pkl``; Ray has no public way to replace them.
    """
    internal = getattr(tuner, "_local_tuner", None)
    if internal is None:  # Ray client: the Tuner lives on the cluster
        logger.warning("resuming through Ray client: results are recorded where the run started")
        return []
    internal._tune_config.time_budget_s = time_left(experiment.budget.time_limit_s, results.read_trials(experiment.run_dir))
    recorders = []
    for callback in internal.get_run_config().callbacks or []:
        if isinstance(callback, _RecordTrials):
            callback.recorder.relocate(experiment.run_dir, progress, total)
            recorders.append(callback.recorder)
    return recorders


class _NoRestoreHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)" hint: the CLI prints the `nas` way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


logging.getLogger("ray.tune.tune").addFilter(_NoRestoreHint())


def _fit_watching_sigint(tuner) -> bool:
    """``tuner.fit()``; returns whether a SIGINT (Ctrl-C) ended it.

    Tune catches the first SIGINT (saves its state, ends the run) and puts back the handler it found:
    ours, installed here, which is then still in place (a second Ctrl-C raises KeyboardInterrupt).
    """
    if threading.current_thread() is not threading.main_thread():
        tuner.fit()
        return False
    previous = signal.getsignal(signal.SIGINT)

    def second_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, second_interrupt)
    try:
        tuner.fit()
        return signal.getsignal(signal.SIGINT) is second_interrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_reason(recorders: list[TrialRecorder]) -> str | None:
    return next((r.stop_reason for r in recorders if r.stop_reason), None)


class _StopOnRepeatedFailure(tune.Stopper):
    """Ends the whole search once the recorder saw its first trials all fail for one reason."""

    def __init__(self, recorder: TrialRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.recorder.stop_reason is not None
