"""The Ray Tune driver: the only module of nas/ that imports Ray.

``run_search(experiment)`` turns an :class:`~nas.experiment.Experiment` into a
``tune.Tuner``:

* the proxy trial (``nas.trial.run_trial``) as a function trainable that
  reports per-epoch metrics (so ASHA can stop weak candidates early), wrapped
  in ``tune.with_resources`` (CPUs and a GPU fraction, so several trials share
  one GPU) and run in long-lived, reused workers (``reuse_actors``);
* the controller behind :class:`controllers.ray_searcher.ControllerSearcher`,
  limited to ``max_concurrent`` pending trials, for ``budget.samples`` trials;
* a ``RunConfig`` with the storage path and name, ``FailureConfig`` and a
  recorder callback that appends every finished trial to ``trials.jsonl``,
  writes search-level TensorBoard scalars and reports progress.

Without ``address`` a local Ray is started (``address="local"``: never joins a
stale one) and stopped by the program; with ``address`` the run joins an
existing cluster (``auto`` on a head node).  ``resume=True`` restores the
Tuner from the run dir: finished trials are kept, the controller state comes
back from the searcher checkpoint, unfinished trials run again.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from controllers import get_controller_class, make_controller
from controllers.constraint import Constraint
from controllers.ray_searcher import GENOTYPE_KEY, ControllerSearcher
from search_spaces import Genotype, get_space

from . import results
from .config import from_dict
from .cost import build_cost_model
from .experiment import Experiment, cost_function, resolved_yaml
from .objective import reward

logger = logging.getLogger(__name__)

#: ``trial_fn(genotype, experiment, on_epoch) -> dict`` with at least status, reward, accuracy.
TrialFn = Callable[[Genotype, Experiment, Callable[[dict], Any]], dict]


def proxy_trial(genotype: Genotype, experiment: Experiment, on_epoch: Callable[[dict], Any]) -> dict:
    """The default trial: train ``genotype`` on the proxy task (never raises for a bad candidate)."""
    from .trial import run_trial

    return run_trial(genotype, experiment.proxy, experiment.data, experiment.objective, experiment.target,
                     on_epoch=on_epoch).to_dict()


SCALE_KEY = "scale"


def scaled_experiment(experiment: Experiment, alpha: float, beta: float, gamma: float) -> Experiment:
    """EfficientNet's step-1 candidate: depth x alpha, width x beta, resolution x gamma on proxy AND target."""
    from efficientnet.compound import round_resolution

    p, t = experiment.proxy, experiment.target
    proxy = dataclasses.replace(p, depth=p.depth * alpha, width=p.width * beta,
                                resolution=round_resolution(p.resolution * gamma))
    target = dataclasses.replace(t, depth=t.depth * alpha, width=t.width * beta,
                                 resolution=round_resolution(t.resolution * gamma))
    return dataclasses.replace(experiment, proxy=proxy, target=target)


@lru_cache(maxsize=8)
def _cost_model(objective, target):
    """One cost model per worker process and target (a latency table is read once)."""
    return build_cost_model(objective, target)


def _trainable(config: dict, experiment: Experiment, trial_fn: TrialFn | None = None) -> None:
    """The Tune function trainable: one genotype, per-epoch reports, a final report with everything."""
    import torch

    from .proxy import for_gpu_share

    threads = max(1, int(experiment.resources.cpus_per_trial))
    torch.set_num_threads(threads)
    genotype = Genotype.from_string(config[GENOTYPE_KEY])
    fn = trial_fn or proxy_trial
    scale = config.get(SCALE_KEY)
    if scale:
        experiment = scaled_experiment(experiment, **scale)
    proxy = for_gpu_share(experiment.proxy, experiment.resources.gpus_per_trial)
    if proxy is not experiment.proxy:
        experiment = dataclasses.replace(experiment, proxy=proxy)

    cost = _cost_model(experiment.objective, experiment.target).cost(genotype)

    def on_epoch(metrics: dict) -> None:
        accuracy = float(metrics.get("accuracy", 0.0))
        accuracy = min(max(accuracy, 0.0), 1.0) if math.isfinite(accuracy) else 0.0
        tune.report({**metrics, "reward": reward(accuracy, cost, experiment.objective), "cost": cost,
                     "status": "running", "done": False})

    result = fn(genotype, experiment, on_epoch)
    tune.report({**result, **(scale or {}), "node_id": ray.get_runtime_context().get_node_id(), "done": True})


class Recorder(Callback):
    """Appends finished trials to trials.jsonl, writes search-level TensorBoard scalars, reports progress.

    Pickled with the Tuner (``tuner.pkl``) and restored with it on resume; files and
    writers are opened lazily, so the unpickled copy works the same.
    """

    def __init__(self, run_dir: Path, total: int, searcher: ControllerSearcher | None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.total = total
        self.searcher = searcher
        self.progress = progress
        self._writer = None
        self._rows: list[dict] | None = None
        self._started = time.time()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_writer"] = None
        state["_rows"] = None
        return state

    # -- helpers --------------------------------------------------------------
    @property
    def rows(self) -> list[dict]:
        """Recorded trials (read once from trials.jsonl), with their ids, best reward and failures kept."""
        if self._rows is None:
            self._rows = []
            self._ids: set[str] = set()
            self._best, self._failed = 0.0, 0
            for row in results.read_trials(self.run_dir):
                self._add(row)
        return self._rows

    def _add(self, row: dict) -> None:
        self._rows.append(row)
        self._ids.add(row["trial_id"])
        self._failed += row["status"] == "failed"
        if results.ok_rows([row]):
            self._best = max(self._best, row["reward"])

    def _tb(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / "search"))
        return self._writer

    def _record(self, trial, status: str, reason: str = "") -> None:
        rows = self.rows  # loads the ids recorded before a crash
        if trial.trial_id in self._ids:
            return  # recorded before a crash; the resumed run re-ran it
        last = dict(trial.last_result or {})
        if status == "ok" and not last.get("done", False):
            status, reason = "stopped", "stopped early by the scheduler"
        if status == "ok" and last.get("status") == "failed":
            status, reason = "failed", last.get("reason", "")
        row = {"trial_id": trial.trial_id, "index": len(rows), "genotype": trial.config.get(GENOTYPE_KEY),
               "status": status, "reason": reason, **(trial.config.get(SCALE_KEY) or {})}
        for key in ("reward", "accuracy", "macs", "params", "cost", "epochs", "wall_s", "epoch",
                    "images_per_s", "proxy_params", "proxy_macs", "node_id", "alpha", "beta", "gamma"):
            if key in last and key not in row:
                row[key] = last[key]
        if status == "stopped" and "epochs" not in row:
            row["epochs"] = last.get("epoch", 0) + 1 if "epoch" in last else 0
        results.append_trial(self.run_dir, row)
        self._add(row)
        self._log(row)

    def _log(self, row: dict) -> None:
        index = row["index"]
        writer = self._tb()
        best = self._best
        reward = row.get("reward") if isinstance(row.get("reward"), (int, float)) else 0.0
        writer.add_scalar("search/reward", reward if math.isfinite(reward) else 0.0, index)
        writer.add_scalar("search/best_reward", best, index)
        if row["status"] in ("ok", "stopped"):
            writer.add_scalar("search/accuracy", row.get("accuracy", 0.0), index)
            writer.add_scalar("search/macs", row.get("macs", 0), index)
        writer.add_scalar("search/failed", self._failed, index)
        controller = getattr(self.searcher, "controller", None)
        stats = controller.stats() if hasattr(controller, "stats") else {}
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                writer.add_scalar(f"controller/{key}", value, index)
        writer.flush()
        if self.progress is not None:
            acc = row.get("accuracy")
            what = (f"reward {reward:.4f} acc {acc:.3f} MACs {row.get('macs', 0) / 1e6:.1f}M"
                    if row["status"] != "failed" else f"FAILED: {row['reason']}")
            self.progress(f"[{len(self.rows)}/{self.total}] trial {row['trial_id']} {row['status']}: {what} | "
                          f"best {best:.4f} | {time.time() - self._started:.0f}s")

    # -- Tune callback hooks ----------------------------------------------------
    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, "ok")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._record(trial, "failed", _error_reason(trial))

    def on_experiment_end(self, trials: list, **info) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


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


def build_controller(experiment: Experiment):
    c = experiment.controller
    constraint = None
    if c.cost_min is not None or c.cost_max is not None:
        constraint = Constraint(cost=cost_function(experiment),
                                lo=-math.inf if c.cost_min is None else c.cost_min,
                                hi=math.inf if c.cost_max is None else c.cost_max,
                                max_tries=c.max_tries, unit=experiment.objective.cost)
    settings = from_dict(get_controller_class(c.name).settings_cls, c.settings, "controller.settings")
    return make_controller(c.name, get_space(experiment.space), seed=c.seed, constraint=constraint,
                           settings=settings)


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


def run_search(experiment: Experiment, resume: bool = False, address: str | None = None,
               progress: Callable[[str], None] | None = None, trial_fn: TrialFn | None = None,
               grid: list[dict] | None = None, genotype: Genotype | None = None) -> SearchOutcome:
    """Run (or resume) the search of ``experiment`` to the end; returns where and what it found.

    Default: the experiment's controller proposes ``budget.samples`` genotypes.  With ``grid``
    (a list of ``{"alpha", "beta", "gamma"}``) and ``genotype``, every grid point scales that one
    genotype instead (EfficientNet's compound-coefficient grid search), no controller involved.
    """
    run_dir = experiment.run_dir
    storage = experiment.output.storage or str(run_dir.parent)
    exp_path = f"{storage.rstrip('/')}/{experiment.output.name}"
    if resume and not tune.Tuner.can_restore(exp_path):
        raise FileNotFoundError(f"--resume: no search state at {exp_path!r}; run without --resume to start it")
    if not resume and (run_dir / results.TRIALS).exists():
        raise ValueError(f"output: run dir {str(run_dir)!r} already holds a search; pass --resume to continue "
                         "it or set output.name to start a new one")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / results.CONFIG).write_text(resolved_yaml(experiment), encoding="utf-8")

    started = _start_ray(experiment, address)
    try:
        trainable = tune.with_parameters(_trainable, experiment=experiment, trial_fn=trial_fn)
        r = experiment.resources
        trainable = tune.with_resources(trainable, {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial})
        if resume:
            tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            if grid is not None:
                searcher, total = None, len(grid)
                param_space = {GENOTYPE_KEY: genotype.to_string(), SCALE_KEY: tune.grid_search(grid)}
                search_alg = None
            else:
                total = experiment.budget.samples
                searcher = ControllerSearcher(build_controller(experiment), metric="reward", mode="max",
                                              max_trials=total,
                                              recorded_ids=functools.partial(results.read_trial_ids, run_dir))
                param_space = None
                search_alg = ConcurrencyLimiter(searcher, r.max_concurrent)
            recorder = Recorder(run_dir, total, searcher, progress)
            scheduler = None
            if experiment.scheduler.name == "asha":
                scheduler = ASHAScheduler(time_attr="epoch", metric="accuracy", mode="max",
                                          max_t=max(experiment.proxy.epochs, 1),
                                          grace_period=experiment.scheduler.grace_period,
                                          reduction_factor=experiment.scheduler.reduction_factor)
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(search_alg=search_alg, scheduler=scheduler,
                                            num_samples=1 if grid is not None else experiment.budget.samples,
                                            max_concurrent_trials=r.max_concurrent if grid is not None else None,
                                            reuse_actors=experiment.ray.reuse_actors,
                                            time_budget_s=experiment.budget.time_limit_s),
                run_config=tune.RunConfig(
                    name=experiment.output.name, storage_path=storage, callbacks=[recorder], verbose=0,
                    failure_config=tune.FailureConfig(max_failures=experiment.ray.max_failures, fail_fast=False)),
            )
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    summary = results.write_summary(run_dir)
    return SearchOutcome(run_dir=run_dir, trials=summary["trials"], failed=summary["failed"], best=summary["best"],
                         pareto=summary["pareto"])
