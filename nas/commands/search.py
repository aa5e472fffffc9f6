"""``nas search CONFIG_OR_RUN [--set key=value]... [--resume] [--address ADDR]``: search, baseline, verification,
report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_run_options, print_table


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Run the search an experiment YAML describes, to the end: the search, an equal-budget random "
                     "baseline (baseline: random), the top-k of both retrained standalone per seed (verify:), and "
                     "report.md. Without --address a local Ray is started when a stage needs one; results go to "
                     "<output.dir>/<output.name>. Interrupted? `nas search RUN_DIR --resume` continues the whole run.")
    p.add_argument("config", metavar="CONFIG_OR_RUN", help="experiment YAML, or with --resume a run dir")
    add_run_options(p, "budget.samples=8")
    p.set_defaults(func=run)


def progress(line: str) -> None:
    print(line, flush=True)


def prepare(args: argparse.Namespace):
    """Every check before slow work, in order; returns the experiment, the resume changes and the evaluator info."""
    from nas.experiment.load import load_run, prepare_run_dir
    from nas.experiment.search import Experiment
    from nas.search.resume import changes
    from nas.search.stages import check_before_slow_work

    experiment = load_run(Experiment, args.config, args.overrides, args.resume)  # config mistakes stop here
    prepare_run_dir(experiment, args.resume)
    changed = changes(experiment) if args.resume else {}
    info = check_before_slow_work(experiment, args.address)  # checkpoint, devices, cluster, data (logs: last)
    return experiment, changed, info


def run(args: argparse.Namespace) -> int:
    experiment, changed, info = prepare(args)
    from nas.search.resume import describe
    from nas.search.stages import run_pipeline
    from nas.search.truth import truth_table

    e = experiment
    table = truth_table(e)
    pick = f"the best in truth of its top {e.verify.top_k} by score" if e.verify.top_k else "its best by score"
    verify = (f"verify every candidate against table {table} (each arm's pick: {pick})" if table else
              f"verify top {e.verify.top_k} x seeds {list(e.verify.seeds)}")
    print(f"search: space {e.search_space.name}, controller {e.controller.name}, evaluator {e.evaluator.kind}, "
          f"{e.budget.samples} candidates; baseline {e.baseline}; {verify} -> {e.run_dir}", flush=True)
    if info.description:
        print(f"evaluator: {info.description}", flush=True)
    if changed:
        print(f"resume: {describe(changed)} (config.yaml updated)", flush=True)
    summary = run_pipeline(experiment, resume=args.resume, address=args.address, progress=progress,
                           header=f"`{Path(args.config).name}`: {e.description}", info=info)
    s = summary["search"]
    print(f"\ndone: {s['trials']} trials ({s['failed']} failed) in {summary['run_dir']}")
    print_summary(summary)
    return 0 if summary["search"]["best"] is not None else 1


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
    from nas.search.results import read_recommended

    recommended = read_recommended(Path(summary["run_dir"]))
    if recommended and recommended.get("trial_id") != best.get("trial_id"):
        print(f"recommended by the controller (by its model; trial {recommended['trial_id']}, search reward "
              f"{recommended['reward']:.4f}): {recommended['genotype']}")
    print(f"written in {summary['run_dir']}: {REPORT} (+ plots), best.yaml, trials.jsonl, pareto.csv, baseline/, "
          f"verify/, tensorboard/")
