"""``nas scale``: the B0..B7 family of any genotype."""

from __future__ import annotations

import argparse

from efficientnet import COEFFICIENTS, ModelSpec, count_spec
from search_spaces import resolve_genotype

from .common import human, print_json, print_table

OFFICIAL = [f"efficientnet-b{i}" for i in range(8)]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale", help="the B0..B7 family of a genotype",
                       description="Scale a genotype into a B0..B7 family with the official coefficients.")
    p.add_argument("genotype", metavar="NAME_OR_GENOTYPE", help="b0, mnasnet-a1 or a block string")
    p.add_argument("--family", choices=["official"], default="official", help="which coefficients")
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def official_family(genotype, num_classes: int = 1000) -> list[dict]:
    rows = []
    for name in OFFICIAL:
        c = COEFFICIENTS[name]
        spec = ModelSpec(genotype, width=c.width, depth=c.depth, resolution=c.resolution, dropout=c.dropout,
                         num_classes=num_classes)
        params, macs = count_spec(spec)
        rows.append({"name": "b" + name.rsplit("-b", 1)[1], "width": c.width, "depth": c.depth,
                     "resolution": c.resolution, "dropout": c.dropout, "params": params, "macs": macs})
    return rows


def run(args: argparse.Namespace) -> int:
    genotype = resolve_genotype(args.genotype)
    rows = official_family(genotype, args.num_classes)
    if args.json:
        print_json(rows)
        return 0
    print(f"genotype: {genotype.to_string()}")
    print_table([dict(r, params=f"{r['params']:,}", macs=human(r["macs"])) for r in rows],
                ["name", "width", "depth", "resolution", "dropout", "params", "macs"])
    return 0
