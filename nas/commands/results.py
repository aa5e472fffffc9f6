"""``nas results RUN_DIR``: the summary of a finished or interrupted search, read from its files (no Ray)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Print the trials, failures, best genotypes and the verification table of a run "
                     "dir written by `nas search`, from its files; starts no Ray. --report also "
                     "(re)writes report.md and its plots.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run dir of `nas search` (runs/<name>)")
    p.add_argument("--report", action="store_true", help="(re)write report.md and the plots in RUN_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nas.search.report import summarize, write_report
    from nas.search.results import TRIALS

    from .search import print_summary

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run dir {str(run_dir)!r} does not exist; pass a folder `nas search` wrote "
                                "(runs/<output.name>)")
    if not (run_dir / TRIALS).is_file():
        raise FileNotFoundError(f"{str(run_dir)!r} has no {TRIALS}: not a search run dir (or no candidate has "
                                "finished yet)")
    print_summary(write_report(run_dir) if args.report else summarize(run_dir))
    return 0
