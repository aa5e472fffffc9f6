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
from pathlib import Path

import yaml

from efficientnet import compound
from search_spaces import Genotype, resolve_genotype

from ..results import GRAMMAR_KEY, upgrade_genotype
from .common import human, positive_float, positive_int, print_json, print_table

COLUMNS = ["name", "phi", "width", "depth", "resolution", "dropout", "params", "macs"]
BEST_FILE = "best.yaml"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="the B0..B7 family of a genotype or search run",
                       description="Scale a genotype into a B0..B7 family, with the official coefficients or "
                                   "with compound scaling (depth alpha^phi, width beta^phi, resolution gamma^phi).")
    p.add_argument("genotype", metavar="GENOTYPE_OR_RUN_DIR",
                   help="b0, mnasnet-a1, a block string, or a run directory (its best.yaml genotype)")
    p.add_argument("--family", choices=["official", "compound"], default=None,
                   help="official hand-set table (default) or the compound formula (default when "
                        "--alpha/--beta/--gamma/--resolution is given)")
    p.add_argument("--alpha", type=positive_float, default=None, help=f"depth base (default {compound.PAPER_ALPHA})")
    p.add_argument("--beta", type=positive_float, default=None, help=f"width base (default {compound.PAPER_BETA})")
    p.add_argument("--gamma", type=positive_float, default=None,
                   help=f"resolution base (default {compound.PAPER_GAMMA})")
    p.add_argument("--phi", type=int, default=compound.DEFAULT_MAX_PHI,
                   help="largest phi: rows b0..bN (default 7; official allows up to 8)")
    p.add_argument("--resolution", type=positive_int, default=None,
                   help="base resolution of the compound family (default 224)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def load_run_genotype(path: str | Path) -> Genotype:
    """The best genotype of a search run: key ``genotype`` (a TF block string) of ``<run_dir>/best.yaml``.

    ``path`` may also be the YAML file itself.
    """
    path = Path(path)
    file = path / BEST_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: a run directory has {BEST_FILE} once a trial has finished; "
                                "pass a finished run's directory or a genotype")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{file} is not valid YAML: {str(err).splitlines()[0]}") from None
    text = data.get("genotype") if isinstance(data, dict) else None
    if not (isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))) \
            or not text:
        raise ValueError(f"{file}: key 'genotype' must be a TF block string such as "
                         f"'r1_k3_s11_e1_i32_o16_se0.25,...', got {text!r}")
    text = upgrade_genotype(text, data.get(GRAMMAR_KEY), str(file))
    try:
        return Genotype.from_string(text)
    except ValueError as err:
        raise ValueError(f"{file}: genotype: {err}") from None


def resolve_genotype_or_run(text: str) -> Genotype:
    """A genotype from a name or string, or the best genotype of a run directory (or its best.yaml)."""
    path = Path(text)
    if path.exists():
        return load_run_genotype(path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        raise FileNotFoundError(f"no such run directory or file {text!r}; pass an existing run directory "
                                "or a genotype (b0, mnasnet-a1 or a block string)")
    return resolve_genotype(text)


def official_family(genotype: Genotype, num_classes: int = 1000, max_phi: int = 7) -> list[dict]:
    """Rows b0..b``max_phi`` of ``genotype`` at the official coefficients."""
    return compound.family_table(genotype, compound.official_family(max_phi), num_classes)


def compound_family(genotype: Genotype, coefficients: compound.CompoundCoefficients, num_classes: int = 1000,
                    max_phi: int = 7, base_resolution: int = 224) -> list[dict]:
    """Rows b0..b``max_phi`` of ``genotype`` by compound scaling."""
    members = compound.compound_family(coefficients, max_phi, base_resolution)
    return compound.family_table(genotype, members, num_classes)


def _family(args: argparse.Namespace) -> str:
    formula_args = [f"--{n}" for n in ("alpha", "beta", "gamma", "resolution") if getattr(args, n) is not None]
    if args.family == "official" and formula_args:
        verb = "applies" if len(formula_args) == 1 else "apply"
        raise ValueError(f"{', '.join(formula_args)} {verb} only to --family compound; drop "
                         f"{'it' if len(formula_args) == 1 else 'them'} or use --family compound")
    return args.family or ("compound" if formula_args else "official")


def run(args: argparse.Namespace) -> int:
    family = _family(args)
    if args.phi < 0:
        raise ValueError(f"--phi must be an integer >= 0, got {args.phi}")
    genotype = resolve_genotype_or_run(args.genotype)
    if family == "official":
        rows = official_family(genotype, args.num_classes, args.phi)
        header = "family: official (Tan & Le 2019, hand-set coefficients)"
    else:
        coef = compound.CompoundCoefficients(
            compound.PAPER_ALPHA if args.alpha is None else args.alpha,
            compound.PAPER_BETA if args.beta is None else args.beta,
            compound.PAPER_GAMMA if args.gamma is None else args.gamma)
        rows = compound_family(genotype, coef, args.num_classes, args.phi,
                               224 if args.resolution is None else args.resolution)
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
