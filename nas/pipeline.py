"""``nas search`` end to end: search, equal-budget random baseline, verification, report -- resumable.

Stages, in one Ray (``nas.driver.ray_session``), each in its own folder of the run dir:

1. ``search`` (``.``): the experiment's controller for ``budget.samples`` candidates, scored by the
   evaluator -- ``proxy``: one Ray Tune trial each (``nas.driver.run_search``); ``supernet``: the
   driver's ask/tell loop over long-lived scoring actors (``nas.actor_pool.run_pool_search``);
2. ``baseline`` (``baseline/``, when ``baseline: random``): the random controller, the same evaluator,
   the same seed, the same ``budget.samples`` exactly;
3. ``verify`` (``verify/``, when ``verify.top_k > 0``): the top-k distinct genotypes of both by search
   reward and the reference (b0), retrained standalone with the proxy recipe, once per seed, through
   Ray Tune in parallel (``nas.driver.run_verification``);
4. ``report.md`` + plots (``nas.search.report``).

``stages.json`` (atomic) lists the finished stages and the verification plan.  ``--resume`` (after
Ctrl-C or SIGKILL) skips finished stages, resumes the interrupted one from its own state (Tune's
``tuner.pkl`` or the loop's ``search_state.json``) and starts the rest.  A budget grown on resume
(``--set budget.samples=N``) continues the search and the baseline to N; a verification that had
finished is then done again for the new top-k, in a new folder (``verify-<N>/``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, Callable

from .experiment import TUNER_STATE, Experiment, resolved_yaml
from .files import atomic_write
from .search import results
from .search.loop import has_state
from .search.report import write_report
from .search.verify import BASELINE_DIR, STAGES, VERIFY_DIR, read_stages, verification_plan

logger = logging.getLogger(__name__)


def stage_experiment(exp: Experiment, folder: str, **changes: Any) -> Experiment:
    """The experiment of a stage: its outputs in ``<run dir>/<folder>``, other fields as given."""
    storage = exp.tune_path if exp.output.storage else None
    output = dataclasses.replace(exp.output, dir=str(exp.run_dir), name=folder, storage=storage)
    return dataclasses.replace(exp, output=output, **changes)


def baseline_experiment(exp: Experiment) -> Experiment:
    """Random search: the same evaluator, seed and budget (``budget.samples`` exactly); no cost-free extras."""
    controller = dataclasses.replace(exp.controller, name="random", settings={})
    return stage_experiment(exp, BASELINE_DIR, controller=controller)


def verify_experiment(exp: Experiment, folder: str = VERIFY_DIR) -> Experiment:
    """Standalone proxy training of fixed genotypes: no early stopping, the search's resources."""
    return stage_experiment(exp, folder, scheduler=dataclasses.replace(exp.scheduler, name="fifo"),
                            evaluator=dataclasses.replace(exp.evaluator, kind="proxy", checkpoint=None))


def _has_state(exp: Experiment) -> bool:
    if exp.evaluator.kind == "supernet":
        return has_state(exp.run_dir)
    return "://" in exp.tune_path or (Path(exp.tune_path) / TUNER_STATE).is_file() \
        or (exp.run_dir / results.TRIALS).is_file()


def _mark(run_dir: Path, **changes: Any) -> dict:
    state = read_stages(run_dir)
    state.update(changes)
    atomic_write(run_dir / STAGES, json.dumps(state, indent=1))
    return state


def _search(exp: Experiment, resume: bool, address: str | None, progress: Callable[[str], None] | None) -> None:
    if exp.evaluator.kind == "supernet":
        from .actor_pool import run_pool_search

        exp.run_dir.mkdir(parents=True, exist_ok=True)
        (exp.run_dir / results.CONFIG).write_text(resolved_yaml(exp), encoding="utf-8")
        run_pool_search(exp, resume=resume, progress=progress)
        results.write_summary(exp.run_dir)
    else:
        from .driver import run_search

        run_search(exp, resume=resume, address=address, progress=progress)


def run_pipeline(exp: Experiment, resume: bool = False, address: str | None = None,
                 progress: Callable[[str], None] | None = None, header: str = "") -> dict[str, Any]:
    """Run (or resume) every stage of ``exp``; returns the summary (``nas.search.report.summarize``)."""
    from .driver import ray_session, run_verification

    run_dir = exp.run_dir
    say = progress or (lambda line: None)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        _mark(run_dir, done=[], verify=None)
        (run_dir / results.CONFIG).write_text(resolved_yaml(exp), encoding="utf-8")
    done = set(read_stages(run_dir).get("done", []))
    stages = [("search", exp)]
    if exp.baseline == "random":
        stages.append(("baseline", baseline_experiment(exp)))
    with ray_session(exp, address):
        for name, stage in stages:
            if name in done and len(results.read_trials(stage.run_dir)) >= stage.budget.samples:
                continue
            again = resume and _has_state(stage)
            say(f"== {name}: {stage.controller.name}, {stage.budget.samples} candidates, evaluator "
                f"{stage.evaluator.kind}{' (resumed)' if again else ''} -> {stage.run_dir}")
            _search(stage, again, address, progress)
            if "verify" in done:  # a grown budget re-ran a finished search: verify its new top-k afresh
                state = read_stages(run_dir)
                done.discard("verify")
                _mark(run_dir, verify=None, verify_dir=f"{VERIFY_DIR}"
                      f"-{stage.budget.samples}")
            done.add(name)
            _mark(run_dir, done=sorted(done))
        if exp.verify.top_k and "verify" not in done:
            state = read_stages(run_dir)
            plan = state.get("verify") or verification_plan(run_dir, exp.verify.top_k, exp.verify.reference)
            _mark(run_dir, verify=plan)
            v = verify_experiment(exp, state.get("verify_dir") or VERIFY_DIR)
            again = resume and _has_state(v)
            say(f"== verify: {len(plan)} genotypes x {len(exp.verify.seeds)} seeds, standalone proxy training"
                f"{' (resumed)' if again else ''} -> {v.run_dir}")
            run_verification(v, [p["genotype"] for p in plan], list(exp.verify.seeds), resume=again,
                             address=address, progress=progress)
            done.add("verify")
            _mark(run_dir, done=sorted(done))
    return write_report(run_dir, header)


__all__ = ["baseline_experiment", "run_pipeline", "stage_experiment", "verify_experiment"]
