"""``nas search`` end to end: search, equal-budget random baseline, verification, report -- resumed as a whole.

Stages, each a session (``nas.search.session``) in its own folder of the run dir, in one Ray (started
only when a stage needs it: workers or Tune trials):

1. ``search`` (``.``): the experiment's controller for ``budget.samples`` candidates, scored where the
   evaluator runs (``EvaluatorKind.placement``: the driver, long-lived workers, or one Tune trial each);
2. ``baseline`` (``baseline/``, when ``baseline: random``): the random controller, the same evaluator,
   the same seed, the same ``budget.samples`` exactly;
3. ``verify``: against a converged benchmark table where ``verify.truth`` picks one
   (``nas.search.truth``: every candidate of both arms, looked up at report time, no training); else (when
   ``verify.top_k > 0``, in ``verify/``) the top-k distinct genotypes of both by search reward and the
   reference (b0), retrained standalone with the proxy recipe, once per seed, as Tune trials in parallel;
4. ``report``: ``report.md`` + plots (``nas.search.report``).

``stages.json`` (atomic) lists the finished stages and the verification plan.  ``--resume`` (after
Ctrl-C or SIGKILL) on the run dir skips finished stages, resumes the interrupted one from its session
state and starts the rest; Ctrl-C anywhere -- in a stage, between stages, while Ray starts, in the
report -- ends with the stage, how far it got and the one command that continues the whole run.  A
budget grown on resume (``--set budget.samples=N``) continues the search and the baseline to N; a
verification that had finished is then done again for the new top-k, in ``verify-<N>/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import SearchInterrupted
from ..evaluators import get_kind
from ..evaluators.base import EvaluatorInfo, EvaluatorKind
from ..experiment.load import write_config
from ..experiment.run_dir import BASELINE_DIR, STAGES, VERIFY_DIR, resume_command
from ..experiment.search import Experiment, build_controller, with_controller
from ..files import atomic_write
from . import results
from .batches import InProcessPool, pump_batches
from .report import write_report
from .session import SAVE_EVERY_S, ControllerProposer, ListProposer, Session, has_state, run_pump
from .truth import check_truth, truth_table
from .verify import aliases_of, read_stages, verification_plan

logger = logging.getLogger(__name__)
Progress = Callable[[str], None] | None


@dataclass
class SearchOutcome:
    run_dir: Path
    trials: int
    failed: int
    best: dict | None
    pareto: list[dict]


def stage_experiment(exp: Experiment, folder: str, **changes: Any) -> Experiment:
    """The experiment of a stage: its outputs in ``<run dir>/<folder>``, other fields as given."""
    storage = f"{exp.storage.rstrip('/')}/{exp.output.name}" if exp.output.storage else None
    output = dataclasses.replace(exp.output, dir=str(exp.run_dir), name=folder, storage=storage)
    return dataclasses.replace(exp, output=output, **changes)


def baseline_experiment(exp: Experiment) -> Experiment:
    """Random search: the same evaluator, seed and budget (``budget.samples`` exactly); no cost-free extras."""
    return stage_experiment(with_controller(exp, "random"), BASELINE_DIR)


def verify_experiment(exp: Experiment, folder: str = VERIFY_DIR) -> Experiment:
    """Standalone proxy training of fixed genotypes: no early stopping, the search's resources."""
    return stage_experiment(exp, folder, scheduler=dataclasses.replace(exp.scheduler, name="fifo"),
                            evaluator=dataclasses.replace(exp.evaluator, kind="proxy", checkpoint=None))


def needs_ray(exp: Experiment, kind: EvaluatorKind | None = None) -> bool:
    """Whether any stage runs in Ray: the evaluator's workers or trials, or verification's trials."""
    kind = kind or get_kind(exp.evaluator.kind)
    return kind.placement(exp) != "driver" or (exp.verify.top_k > 0 and truth_table(exp) is None)


def check_before_slow_work(exp: Experiment, address: str | None = None) -> EvaluatorInfo:
    """Every check of the run's stages, in this process, before Ray or any worker starts (each: one line).

    The cluster address first (bounded), then the evaluator's own checks (checkpoint, shapes, device,
    data -- reading the data logs what it read, so it comes last), then verification's (its device and
    data: it retrains candidates with the proxy recipe) or its truth table's.
    """
    from ..experiment.search import check_cluster

    if needs_ray(exp):
        check_cluster(exp, address)
    info = get_kind(exp.evaluator.kind).check(exp, address)
    if check_truth(exp) is None and exp.verify.top_k and exp.evaluator.kind != "proxy":
        get_kind("proxy").check(verify_experiment(exp), address)
    return info


def score(session: Session, exp: Experiment, kind: EvaluatorKind, trial_fn: Callable | None = None) -> None:
    """The pump of the evaluator's placement, run until the session's budget is spent or it stops."""
    placement = kind.placement(exp)
    if placement == "driver":
        pump_batches(session, InProcessPool(kind.build(exp)), exp.evaluator.batch)
    elif placement == "workers":
        from ..ray.pool import RayScoringPool

        pool = RayScoringPool(kind.build, exp)
        try:
            pump_batches(session, pool, exp.evaluator.batch)
        finally:
            pool.close()
    else:
        from ..ray.tune import pump_trials

        pump_trials(session, exp, trial_fn)


def run_search_stage(exp: Experiment, stage: str = "search", root: Path | None = None, resume: bool = False,
                     progress: Progress = None, info: EvaluatorInfo | None = None,
                     trial_fn: Callable | None = None) -> dict[str, Any]:
    """One controller search of ``exp`` (in a running Ray where its placement needs one); its summary."""
    kind = get_kind(exp.evaluator.kind)
    write_config(exp)
    controller = build_controller(exp, info.known_noise if info else None)  # the evaluator's noise: a hint
    session = Session(exp.run_dir, ControllerProposer(controller), exp.budget.samples, stage=stage,
                      root=root, resume=resume, time_limit_s=exp.budget.time_limit_s,
                      stop_after_failures=exp.budget.stop_after_failures, progress=progress, info=info,
                      every_result=kind.placement(exp) == "trials",
                      save_every_s=0.0 if kind.placement(exp) == "trials" else SAVE_EVERY_S)
    for text in info.warnings if info else ():
        session.warn(text)
    return run_pump(session, lambda s: score(s, exp, kind, trial_fn))


def run_verification(exp: Experiment, genotypes: list[str], seeds: list[int], root: Path | None = None,
                     resume: bool = False, progress: Progress = None, trial_fn: Callable | None = None,
                     stage: str = "verify") -> dict[str, Any]:
    """Retrain every genotype standalone with the proxy recipe once per seed (one Tune trial each)."""
    write_config(exp)
    items = [(g, {"seed": int(s)}) for g in genotypes for s in seeds]
    session = Session(exp.run_dir, ListProposer(items), len(items), stage=stage, root=root, resume=resume,
                      stop_after_failures=exp.budget.stop_after_failures, progress=progress, unit="trials",
                      every_result=True, save_every_s=0.0)
    return run_pump(session, lambda s: score(s, exp, get_kind("proxy"), trial_fn))


class _RayWhenNeeded:
    """Starts (or joins) Ray the first time a stage needs it; stops what it started on exit."""

    def __init__(self, exp: Experiment, address: str | None) -> None:
        self.exp, self.address = exp, address
        self.stack = contextlib.ExitStack()
        self.started = False

    def need(self) -> None:
        if self.started:
            return
        from ..ray.local import ray_session

        r, ray_cfg = self.exp.resources, self.exp.ray
        self.stack.enter_context(ray_session(self.address or ray_cfg.address, r.num_cpus, r.num_gpus,
                                             ray_cfg.dashboard, ray_cfg.connect_timeout_s))
        self.started = True

    def __enter__(self) -> "_RayWhenNeeded":
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()


def _mark(run_dir: Path, **changes: Any) -> dict:
    state = read_stages(run_dir)
    state.update(changes)
    atomic_write(run_dir / STAGES, json.dumps(state, indent=1))
    return state


class _Run:
    """The stages of one ``nas search`` run dir, and where an interrupt found them."""

    def __init__(self, exp: Experiment, resume: bool, address: str | None, progress: Progress,
                 info: EvaluatorInfo | None, trial_fn: Callable | None) -> None:
        self.exp, self.resume, self.address, self.info, self.trial_fn = exp, resume, address, info, trial_fn
        self.say = progress or (lambda line: None)
        self.progress = progress
        self.run_dir = exp.run_dir
        self.stages = [("search", exp)] + ([("baseline", baseline_experiment(exp))] if exp.baseline == "random" else [])
        self.current = "search"

    def searches(self, ray: _RayWhenNeeded) -> None:
        done = set(read_stages(self.run_dir).get("done", []))
        kind = get_kind(self.exp.evaluator.kind)
        for name, stage in self.stages:
            self.current = name
            if name in done and len(results.read_trials(stage.run_dir)) >= stage.budget.samples:
                continue
            again = self.resume and (has_state(stage.run_dir) or bool(results.read_trials(stage.run_dir)))
            self.say(f"== {name}: {stage.controller.name}, {stage.budget.samples} candidates, evaluator "
                     f"{stage.evaluator.kind} ({kind.placement(stage)}){' (resumed)' if again else ''} -> "
                     f"{stage.run_dir}")
            if kind.placement(stage) != "driver":
                ray.need()
            run_search_stage(stage, name, self.run_dir, again, self.progress, self.info, self.trial_fn)
            if "verify" in done:  # a grown budget re-ran a finished search: verify its new top-k afresh
                done.discard("verify")
                _mark(self.run_dir, verify=None, verify_dir=f"{VERIFY_DIR}-{stage.budget.samples}")
            done.add(name)
            _mark(self.run_dir, done=sorted(done))

    def verification(self, ray: _RayWhenNeeded) -> None:
        exp, state = self.exp, read_stages(self.run_dir)
        if state.get("truth"):
            self.say(f"== verify: every candidate of both arms against the converged table {state['truth']} (no "
                     "training)")
            _mark(self.run_dir, done=sorted(set(state.get("done", [])) | {"verify"}))
            return
        if not exp.verify.top_k or "verify" in state.get("done", []):
            return
        self.current = "verify"
        plan = state.get("verify") or verification_plan(self.run_dir, exp.verify.top_k, exp.verify.reference,
                                                        key=exp.proxy.network_key)
        _mark(self.run_dir, verify=plan, aliases=aliases_of(self.run_dir, exp.proxy.network_key))
        v = verify_experiment(exp, state.get("verify_dir") or VERIFY_DIR)
        again = self.resume and has_state(v.run_dir)
        self.say(f"== verify: {len(plan)} genotypes x {len(exp.verify.seeds)} seeds, standalone proxy training"
                 f"{' (resumed)' if again else ''} -> {v.run_dir}")
        ray.need()
        run_verification(v, [p["genotype"] for p in plan], list(exp.verify.seeds), self.run_dir, again,
                         self.progress, self.trial_fn)
        _mark(self.run_dir, done=sorted(set(read_stages(self.run_dir).get("done", [])) | {"verify"}))

    def interrupted(self) -> SearchInterrupted:
        """Ctrl-C outside a session (Ray starting, between stages, the report): where the run was."""
        state = read_stages(self.run_dir)
        if self.current == "report":
            names = [n for n, _ in self.stages] + (["verify"] if self.exp.verify.top_k else [])
            return SearchInterrupted("report", len(set(state.get("done", [])) & set(names)), len(names) + 1,
                                     self.run_dir, resume_command(self.run_dir), "stages")
        if self.current == "verify":
            folder = self.run_dir / (state.get("verify_dir") or VERIFY_DIR)
            total = len(state.get("verify") or []) * len(self.exp.verify.seeds)
            return SearchInterrupted("verify", len(results.read_trials(folder)), total, self.run_dir,
                                     resume_command(self.run_dir), "trials")
        stage = dict(self.stages)[self.current]
        return SearchInterrupted(self.current, len(results.read_trials(stage.run_dir)), stage.budget.samples,
                                 self.run_dir, resume_command(self.run_dir))


def run_pipeline(exp: Experiment, resume: bool = False, address: str | None = None, progress: Progress = None,
                 header: str = "", info: EvaluatorInfo | None = None, trial_fn: Callable | None = None
                 ) -> dict[str, Any]:
    """Run (or resume) every stage of ``exp``; returns the summary (``nas.search.report.summarize``)."""
    run = _Run(exp, resume, address, progress, info, trial_fn)
    exp.run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        _mark(exp.run_dir, done=[], verify=None)
    _mark(exp.run_dir, truth=truth_table(exp))
    write_config(exp)
    try:
        with _RayWhenNeeded(exp, address) as ray:
            run.searches(ray)
            run.verification(ray)
        run.current = "report"
        return write_report(exp.run_dir, header)
    except KeyboardInterrupt:
        raise run.interrupted() from None


def run_search(exp: Experiment, resume: bool = False, address: str | None = None, progress: Progress = None,
               trial_fn: Callable | None = None, info: EvaluatorInfo | None = None) -> SearchOutcome:
    """The search stage alone (no baseline, no verification), in its own Ray when it needs one; ``info``: the
    evaluator's check (its warnings, and its known noise for the controller), if the caller ran it."""
    with _RayWhenNeeded(exp, address) as ray:
        if get_kind(exp.evaluator.kind).placement(exp) != "driver":
            ray.need()
        try:
            summary = run_search_stage(exp, resume=resume, progress=progress, info=info, trial_fn=trial_fn)
        except KeyboardInterrupt:
            raise _Run(exp, resume, address, progress, None, trial_fn).interrupted() from None
    return SearchOutcome(exp.run_dir, summary["trials"], summary["failed"], summary["best"], summary["pareto"])


__all__ = ["SearchOutcome", "baseline_experiment", "check_before_slow_work", "needs_ray", "run_pipeline",
           "run_search", "run_search_stage", "run_verification", "score", "stage_experiment", "verify_experiment"]
