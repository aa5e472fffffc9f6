"""The ``trials`` placement: the session's candidates scored as Ray Tune trials, one each.

Per-candidate training earns Tune's overhead (~0.3 s a trial): ASHA stops weak candidates after an
epoch (every epoch is reported), a trial whose worker died is retried (``ray.max_failures``),
trials run in long-lived reused workers (``ray.reuse_actors``) with ``resources.cpus_per_trial`` and
a GPU fraction each (several trials share a GPU), at most ``resources.max_concurrent`` at once.

Tune is only the executor here: the session (``nas.search.session``) owns the rules.  A searcher
hands Tune the session's candidates (``session.ask``) and a callback settles every finished trial
into one ``TrialResult`` (``nas.evaluators.outcome.settle``: ok, failed or stopped) and gives it
back (``session.record``); a stopper ends the run when the session stops (failures, an infeasible
constraint).  Resume is the session's (its own JSON state), never Tune's pickled state: the
searcher and callback pickle as inert shells into Tune's ``tuner.pkl``, which nothing reads back.

A trial builds the evaluator of the experiment's kind in its worker (data and cost models cached per
process) with the candidate's extras applied (a verification seed, a grid triple:
``nas.experiment.search.variant``) and trains it, reporting every epoch (the last one only in the
final report: ASHA stops a trial at ``max_t``, and a stop on a per-epoch report would lose the final
result of a trial that ran to its end).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from search_spaces import Genotype

from ..evaluators import get_kind
from ..evaluators.outcome import RUNNING, TrialResult, settle
from ..experiment.search import Experiment, variant
from ..proxy.runtime import for_gpu_share, set_trial_threads

logger = logging.getLogger(__name__)

#: ``trial_fn(genotype, experiment, on_epoch) -> TrialResult``: the work of one trial (default: the
#: evaluator's ``train``); its ``on_epoch`` metrics carry ``epoch``, ``accuracy`` and ``reward``.
TrialFn = Callable[[Genotype, Experiment, Callable[[dict], Any]], TrialResult]
CANDIDATE_KEY, GENOTYPE_KEY, EXTRA_KEY = "candidate", "genotype", "extra"


def default_trial(genotype: Genotype, experiment: Experiment, on_epoch: Callable[[dict], Any]) -> TrialResult:
    """Train ``genotype`` with the experiment's evaluator (never raises for a bad candidate)."""
    evaluator = get_kind(experiment.evaluator.kind).build(experiment)
    train = getattr(evaluator, "train", None)
    return train(genotype, on_epoch) if train is not None else evaluator.score([genotype])[0]


def _trainable(config: dict, experiment: Experiment, trial_fn: TrialFn | None = None) -> None:
    """One candidate: the experiment with its extras, trained in this worker; every epoch reported."""
    experiment = variant(experiment, config.get(EXTRA_KEY) or {})
    set_trial_threads(experiment.proxy, experiment.resources.cpus_per_trial)
    proxy = for_gpu_share(experiment.proxy, experiment.resources.gpus_per_trial)
    if proxy is not experiment.proxy:
        import dataclasses

        experiment = dataclasses.replace(experiment, proxy=proxy)
    where = {"node_id": ray.get_runtime_context().get_node_id()}
    last_epoch = experiment.proxy.epochs

    def on_epoch(metrics: dict) -> None:
        if metrics["epoch"] < last_epoch:
            tune.report({**metrics, **where, "status": RUNNING, "done": False})

    result = (trial_fn or default_trial)(Genotype.from_string(config[GENOTYPE_KEY]), experiment, on_epoch)
    final = result.to_dict()
    final.pop("history", None)  # the epochs were reported one by one; a list would flood Tune's TensorBoard logger
    tune.report({**final, "epoch": result.epochs, **where, "done": True})


class _Inert:
    """Pickled into Tune's ``tuner.pkl`` without the session (nothing reads it back)."""

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.session = None


class _SessionSearcher(_Inert, Searcher):
    """Hands Tune the session's candidates, one a trial."""

    def __init__(self, session) -> None:
        Searcher.__init__(self, metric="reward", mode="max")
        self.session = session
        self.candidates: dict[str, Any] = {}

    def suggest(self, trial_id: str) -> dict | None:
        if self.session is None:
            return Searcher.FINISHED
        asked = self.session.ask(1)
        if not asked:
            return Searcher.FINISHED
        candidate = asked[0]
        self.candidates[trial_id] = candidate
        return {GENOTYPE_KEY: candidate.genotype, CANDIDATE_KEY: candidate.trial_id, EXTRA_KEY: dict(candidate.extra)}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass  # the callback records (it sees the trial's error text)

    def save(self, checkpoint_path: str) -> None:
        pass  # the session keeps the resume state (search_state.json), not Tune

    def restore(self, checkpoint_path: str) -> None:
        pass


class _RecordTrials(_Inert, Callback):
    """Settles each finished trial into a TrialResult and gives it to the session."""

    def __init__(self, session, searcher: _SessionSearcher) -> None:
        self.session, self.searcher = session, searcher

    def _record(self, trial, error: str | None) -> None:
        candidate = self.searcher.candidates.pop(trial.trial_id, None) if self.session is not None else None
        if candidate is None:
            return
        last = dict(trial.last_result or {})
        result = settle(candidate.genotype, last, error)
        self.session.record(candidate, result, {"node_id": last["node_id"]} if "node_id" in last else None)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, None)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, _error_reason(trial))


class _StopWithSession(_Inert, tune.Stopper):
    """Ends the whole run once the session stops (repeated failures, an infeasible constraint)."""

    def __init__(self, session) -> None:
        self.session = session

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.session is not None and self.session.stop_reason is not None


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


def _scheduler(experiment: Experiment) -> ASHAScheduler | None:
    s = experiment.scheduler
    if s.name != "asha":
        return None
    return ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max", max_t=max(experiment.proxy.epochs, 1),
                         grace_period=s.grace_period, reduction_factor=s.reduction_factor)


def pump_trials(session, experiment: Experiment, trial_fn: TrialFn | None = None) -> None:
    """Score the session's candidates as Tune trials until its budget or time is spent, or it stops.

    Raises KeyboardInterrupt when Ctrl-C ended the run (Tune catches the first SIGINT and stops).
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    if session.remaining() == 0 or session.stopping():
        return
    r = experiment.resources
    trainable = tune.with_parameters(_trainable, experiment=experiment, trial_fn=trial_fn)
    trainable = tune.with_resources(trainable, {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial})
    searcher = _SessionSearcher(session)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, r.max_concurrent),
                                    scheduler=_scheduler(experiment), num_samples=-1,  # the session says when
                                    reuse_actors=experiment.ray.reuse_actors, time_budget_s=session.time_left_s),
        run_config=tune.RunConfig(
            name=experiment.output.name, storage_path=experiment.storage, verbose=0,
            callbacks=[_RecordTrials(session, searcher)], stop=_StopWithSession(session),
            failure_config=tune.FailureConfig(max_failures=experiment.ray.max_failures, fail_fast=False)))
    if _fit_watching_sigint(tuner):
        raise KeyboardInterrupt


class _NoRestoreHint(logging.Filter):
    """Drops Tune's "Resume experiment with: Tuner.restore(...)" hint: the CLI prints the `nas` way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


logging.getLogger("ray.tune.tune").addFilter(_NoRestoreHint())


def _fit_watching_sigint(tuner) -> bool:
    """``tuner.fit()``; returns whether a SIGINT (Ctrl-C) ended it.

    Tune catches the first SIGINT (ends the run) and puts back the handler it found: ours, installed
    here, which is then still in place (a second Ctrl-C raises KeyboardInterrupt).
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


__all__ = ["TrialFn", "default_trial", "pump_trials"]
