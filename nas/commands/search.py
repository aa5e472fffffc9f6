"""``nas search CONFIG [--set key=value]... [--resume] [--address ADDR]``: the Ray Tune search."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_run_options, human, print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run an architecture search through Ray Tune",
                       description="Run the search an experiment YAML describes, to the end. Without --address a "
                                   "local Ray is started and stopped; results go to <output.dir>/<output.name>.")
    p.add_argument("config", metavar="CONFIG", help="experiment YAML, or with --resume a run dir")
    add_run_options(p, "budget.samples=8")
    p.set_defaults(func=run)


def progress(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from nas.experiment import check_cluster, check_inputs, check_run_dir, load_experiment
    from nas.search.results import CONFIG
    from nas.search.resume import changes, describe, relocated

    config = Path(args.config)
    run_dir = config if args.resume and config.is_dir() else None
    if run_dir is not None and not (run_dir / CONFIG).is_file():
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} has no {CONFIG}; pass a run dir that `nas search` "
                                "wrote, or the experiment YAML")
    experiment = load_experiment(run_dir / CONFIG if run_dir else config, args.overrides)  # config mistakes stop here
    if run_dir is not None:
        experiment = relocated(experiment, run_dir)  # resume where the run dir is now (moved or copied)
    check_run_dir(experiment, args.resume)
    changed = changes(experiment) if args.resume else {}
    check_cluster(experiment, args.address)
    check_inputs(experiment, args.address)  # the last check: it logs what it loaded

    from nas.driver import run_search

    print(f"search: space {experiment.space}, controller {experiment.controller.name}, "
          f"{experiment.budget.samples} trials, {experiment.resources.max_concurrent} at a time -> "
          f"{experiment.run_dir}", flush=True)
    if changed:
        print(f"resume: {describe(changed)} (config.yaml updated)", flush=True)
    outcome = run_search(experiment, resume=args.resume, address=args.address, progress=progress)
    print(f"\ndone: {outcome.trials} trials ({outcome.failed} failed) in {outcome.run_dir}")
    if outcome.pareto:
        print("Pareto front (accuracy vs MACs):")
        print_table([{"trial": r["trial_id"], "accuracy": round(r["accuracy"], 4), "MACs": human(r["macs"]),
                      "params": human(r["params"]), "reward": round(r["reward"], 4)} for r in outcome.pareto],
                    ["trial", "accuracy", "MACs", "params", "reward"])
    if outcome.best is None:
        print("no trial finished successfully; see trials.jsonl for the reasons", file=sys.stderr)
        return 1
    b = outcome.best
    print(improvement_line(outcome.run_dir, b))
    print(f"best: reward {b['reward']:.4f}, accuracy {b['accuracy']:.4f}, MACs {human(b['macs'])}, "
          f"params {human(b['params'])}\n  {b['genotype']}\nwritten: best.yaml, trials.jsonl, pareto.csv, "
          f"pareto.png, config.yaml, tensorboard/ (tensorboard --logdir {outcome.run_dir})")
    return 0


def improvement_line(run_dir, best: dict) -> str:
    """The best reward against the first trials (a controller's random warm-up), as a user checks a search."""
    import statistics

    from nas.search.results import ok_rows, read_trials

    rows = ok_rows(sorted(read_trials(run_dir), key=lambda r: r["index"]))
    first = rows[:max(1, min(8, len(rows) // 4))]
    median = statistics.median(r["reward"] for r in first)
    return (f"search gain: best reward {best['reward']:.4f} vs {median:.4f}, the median of the first {len(first)} "
            f"trials ({(best['reward'] / median - 1) * 100:+.1f}%)" if median > 0 else "")
