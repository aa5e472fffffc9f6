"""``nas search CONFIG [--set key=value]... [--resume] [--address ADDR]``: search, baseline, verification, report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_run_options, print_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run an architecture search, its random baseline and their verification",
                       description="Run the search an experiment YAML describes, to the end: the search, an "
                                   "equal-budget random baseline (baseline: random), the top-k of both retrained "
                                   "standalone per seed (verify:), and report.md. Without --address a local Ray is "
                                   "started and stopped; results go to <output.dir>/<output.name>.")
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
    if experiment.evaluator.kind == "proxy":
        check_run_dir(experiment, args.resume)
    else:
        check_pool_run_dir(experiment, args.resume)
    changed = changes(experiment) if args.resume else {}
    check_cluster(experiment, args.address)
    check_inputs(experiment, args.address)  # the last check: it logs what it loaded

    from nas.pipeline import run_pipeline

    e = experiment
    print(f"search: space {e.space}, controller {e.controller.name}, evaluator {e.evaluator.kind}, "
          f"{e.budget.samples} candidates; baseline {e.baseline}; verify top {e.verify.top_k} x seeds "
          f"{list(e.verify.seeds)} -> {e.run_dir}", flush=True)
    if changed:
        print(f"resume: {describe(changed)} (config.yaml updated)", flush=True)
    summary = run_pipeline(experiment, resume=args.resume, address=args.address, progress=progress,
                           header=f"`{Path(args.config).name}`: {e.description}")
    s = summary["search"]
    print(f"\ndone: {s['trials']} trials ({s['failed']} failed) in {summary['run_dir']}")
    print_summary(summary)
    return 0 if summary["search"]["best"] is not None else 1


def check_pool_run_dir(experiment, resume: bool) -> None:
    from nas.config import ConfigError
    from nas.search.results import TRIALS
    from nas.search.verify import STAGES

    run_dir = experiment.run_dir
    if resume and not (run_dir / STAGES).is_file():
        raise FileNotFoundError(f"--resume: no search state in {str(run_dir)!r}; run without --resume to start it")
    if not resume and (run_dir / TRIALS).exists():
        raise ConfigError(f"output: run dir {str(run_dir)!r} already holds a search; pass --resume to continue "
                          "it or set output.name to start a new one")


def print_summary(summary: dict) -> None:
    from nas.search.report import COLUMNS, REPORT, summary_lines, table_rows

    print()
    for line in summary_lines(summary):
        print(line)
    if summary["table"]:
        print("\nverification (standalone proxy training, reward per seed):")
        print_table(table_rows(summary["table"]), COLUMNS)
    best = summary["search"]["best"]
    if best is None:
        print("no candidate of the search finished successfully; see trials.jsonl for the reasons", file=sys.stderr)
        return
    print(f"\nbest genotype of the search (by search reward): {best['genotype']}")
    print(f"written in {summary['run_dir']}: {REPORT} (+ plots), best.yaml, trials.jsonl, pareto.csv, baseline/, "
          f"verify/, tensorboard/")
