"""``nas scale-search CONFIG [--set key=value]... [--resume] [--address ADDR] [--json]``.

EfficientNet's step 1 (Tan & Le 2019, section 3.3): the (alpha, beta, gamma)
grid at phi = 1 through Ray Tune, then the family it implies
(``nas.search.scale_grid`` has the details and the YAML section ``grid``).
"""

from __future__ import annotations

import argparse
import sys

from .common import add_run_options, human, print_json, print_table

CANDIDATE_COLUMNS = ["alpha", "beta", "gamma", "factor", "accuracy", "reward", "MACs", "params", "MACs x", "status"]
FAMILY_COLUMNS = ["name", "phi", "width", "depth", "resolution", "dropout", "params", "macs"]


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("EfficientNet's step 1: train the genotype scaled by every (alpha, beta, gamma) "
                     "with alpha*beta^2*gamma^2 near 2 (section 'grid' of the YAML) through Ray Tune, "
                     "pick the best triple and print the B0..B7-like family it implies. Writes "
                     "scale_grid.csv and scale_choice.yaml to <output.dir>/<output.name>.")
    p.add_argument("config", metavar="CONFIG", help="grid-search YAML, or with --resume its run dir")
    add_run_options(p, "grid.tolerance=0.2")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (run_dir, genotype, chosen, candidates, family) at the end")
    p.set_defaults(func=run)


def _progress(line: str) -> None:
    print(line, flush=True)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from nas.search.scale_grid import CANDIDATES_CSV, CHOICE_YAML, load_scale_search, run_scale_search

    grid, experiment = load_scale_search(args.config, args.overrides)  # every mistake stops here, before Ray
    triples = grid.triples()
    say = _stderr if args.json else _progress  # --json keeps stdout one JSON document
    say(f"scale-search: {len(triples)} candidates (|alpha*beta^2*gamma^2 - {grid.target:g}| <= {grid.tolerance:g}) "
        f"of {grid.genotype}, {experiment.resources.max_concurrent} at a time -> {experiment.run_dir}")
    outcome = run_scale_search(grid, experiment, resume=args.resume, address=args.address, progress=say)
    if args.json:
        print_json({"run_dir": str(outcome.run_dir), "genotype": outcome.genotype, "chosen": outcome.choice,
                    "candidates": outcome.candidates, "family": outcome.family})
        return 0 if outcome.choice is not None else 1
    print(f"\ndone: {outcome.trials} trials ({outcome.failed} failed) in {outcome.run_dir}")
    print(f"candidates (accuracy on the proxy, MACs/params of the target model, {grid.metric} picks):")
    print_table([{"alpha": c["alpha"], "beta": c["beta"], "gamma": c["gamma"], "factor": c["factor"],
                  "accuracy": _round(c["accuracy"]), "reward": _round(c["reward"]), "MACs": human(c["macs"]),
                  "params": human(c["params"]), "MACs x": c["macs_ratio"], "status": c["status"]}
                 for c in outcome.candidates], CANDIDATE_COLUMNS)
    if outcome.choice is None:
        print("no candidate finished successfully; see trials.jsonl for the reasons", file=sys.stderr)
        return 1
    c = outcome.choice
    print(f"\nchosen: alpha={c['alpha']:g} beta={c['beta']:g} gamma={c['gamma']:g} "
          f"(alpha*beta^2*gamma^2 = {c['factor']:.3f}), {grid.metric} {c[grid.metric]:.4f}")
    print(f"family it implies (compound scaling of the target model, {grid.genotype} at phi = 0):")
    print_table([dict(r, params=f"{r['params']:,}", macs=human(r["macs"])) for r in outcome.family],
                FAMILY_COLUMNS)
    print(f"written: {CANDIDATES_CSV}, {CHOICE_YAML}, trials.jsonl, config.yaml, grid.yaml in {outcome.run_dir}")
    return 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
