"""``nas scale``: the B0..B7 family of any genotype or search run.

Two families (``efficientnet.compound`` documents the rounding):

* ``--family official`` (default): the hand-set B0..B7 coefficients of Tan & Le 2019;
* ``--family compound``: equation 3, depth ``alpha**phi``, width ``beta**phi``,
  resolution ``gamma**phi`` times the base resolution, phi = 0..``--phi``.

The input is a genotype (name, TF block string, timm string) or a run
directory, whose best genotype is read from ``<run_dir>/best.yaml``.
"""

from __future__ import annotations

import argparse

from .common import add_num_classes, human, num_classes, positive_float, positive_int, print_json, print_table

COLUMNS = ["name", "phi", "width", "depth", "resolution", "dropout", "params", "macs"]


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Scale a genotype into a B0..B7 family, with the official coefficients or "
                     "with compound scaling (depth alpha^phi, width beta^phi, resolution gamma^phi).")
    p.add_argument("genotype", metavar="GENOTYPE_OR_RUN_DIR",
                   help="b0, mnasnet-a1, a block string, or a run directory (its best.yaml genotype)")
    p.add_argument("--family", choices=["official", "compound"], default=None,
                   help="official hand-set table (default) or the compound formula (default when "
                        "--alpha/--beta/--gamma/--resolution is given)")
    p.add_argument("--alpha", type=positive_float, default=None, help="depth base (default: the paper's 1.2)")
    p.add_argument("--beta", type=positive_float, default=None, help="width base (default: the paper's 1.1)")
    p.add_argument("--gamma", type=positive_float, default=None, help="resolution base (default: the paper's 1.15)")
    p.add_argument("--phi", type=int, default=None,
                   help="largest phi: rows b0..bN (default 7; official allows up to 8)")
    p.add_argument("--resolution", type=positive_int, default=None,
                   help="base resolution of the compound family (default 224)")
    add_num_classes(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def _family(args: argparse.Namespace) -> str:
    formula_args = [f"--{n}" for n in ("alpha", "beta", "gamma", "resolution") if getattr(args, n) is not None]
    if args.family == "official" and formula_args:
        verb = "applies" if len(formula_args) == 1 else "apply"
        raise ValueError(f"{', '.join(formula_args)} {verb} only to --family compound; drop "
                         f"{'it' if len(formula_args) == 1 else 'them'} or use --family compound")
    return args.family or ("compound" if formula_args else "official")


def run(args: argparse.Namespace) -> int:
    from efficientnet import DEFAULT_RESOLUTION, compound
    from nas.search.results import resolve_genotype_or_run

    family = _family(args)
    args.phi = compound.DEFAULT_MAX_PHI if args.phi is None else args.phi
    if args.phi < 0:
        raise ValueError(f"--phi must be an integer >= 0, got {args.phi}")
    genotype = resolve_genotype_or_run(args.genotype)
    if family == "official":
        rows = compound.family_table(genotype, compound.official_family(args.phi), num_classes(args))
        header = "family: official (Tan & Le 2019, hand-set coefficients)"
    else:
        coef = compound.CompoundCoefficients(
            compound.PAPER_ALPHA if args.alpha is None else args.alpha,
            compound.PAPER_BETA if args.beta is None else args.beta,
            compound.PAPER_GAMMA if args.gamma is None else args.gamma)
        base = DEFAULT_RESOLUTION if args.resolution is None else args.resolution
        rows = compound.family_table(genotype, compound.compound_family(coef, args.phi, base), num_classes(args))
        header = (f"family: compound alpha={coef.alpha:g} beta={coef.beta:g} gamma={coef.gamma:g} "
                  f"(alpha*beta^2*gamma^2 = {coef.flops_factor:.3f}; resolution to a multiple of "
                  f"{compound.RESOLUTION_DIVISOR})")
    if args.json:
        print_json(rows)
        return 0
    print(f"genotype: {genotype.to_string()}")
    print(header)
    print_table([dict(r, params=f"{r['params']:,}", macs=human(r["macs"])) for r in rows], COLUMNS)
    return 0
