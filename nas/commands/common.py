"""Helpers shared by the CLI commands: model options, number parsing, output.

Nothing here imports torch at module level: ``nas CMD --help`` must answer at once (see ``nas.cli``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

#: What ``--model`` accepts (checked against ``efficientnet.COEFFICIENTS`` when the command runs).
MODEL_HELP = "efficientnet-b0 .. efficientnet-b7 (+ b8, l2)"


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


positive_int = int_at_least(1)


def add_run_options(parser: argparse.ArgumentParser, example: str, ray: bool = True) -> None:
    """``--set KEY=VALUE`` (repeatable) and, for Ray runs, ``--resume`` and ``--address``."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override a config value, e.g. --set {example} (repeatable)")
    if ray:
        parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its run dir")
        parser.add_argument("--address", default=None,
                            help="join an existing Ray cluster (e.g. auto, or ray://host:10001)")


def model_name(text: str) -> str:
    """``--model``: a row of the official coefficient table (an unknown name lists the known ones)."""
    from efficientnet import COEFFICIENTS

    if text not in COEFFICIENTS:
        raise ValueError(f"--model {text!r} is not a model of the coefficient table; choose one of "
                         f"{', '.join(COEFFICIENTS)}")
    return text


def add_model_options(parser: argparse.ArgumentParser, genotype_optional: bool = False) -> None:
    parser.add_argument("genotype", metavar="NAME_OR_GENOTYPE", nargs="?" if genotype_optional else None,
                        help="a named genotype (b0, mnasnet-a1), a TF block string, a timm arch string or a "
                             "search run directory (its best.yaml genotype)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help=f"official coefficients (width, depth, resolution, dropout): {MODEL_HELP}; default "
                             "efficientnet-b0")
    parser.add_argument("--width", type=positive_float, default=None, help="width multiplier")
    parser.add_argument("--depth", type=positive_float, default=None, help="depth multiplier")
    parser.add_argument("--resolution", type=positive_int, default=None, help="input resolution")
    add_num_classes(parser)


def add_num_classes(parser) -> None:
    parser.add_argument("--num-classes", type=positive_int, default=None,
                        help="classifier outputs (default: ImageNet's 1000, efficientnet.NUM_CLASSES)")


def num_classes(args: argparse.Namespace) -> int:
    from efficientnet import NUM_CLASSES

    return NUM_CLASSES if args.num_classes is None else args.num_classes


def spec_from_args(args: argparse.Namespace):
    """The model of the options; the genotype may also be a run directory (its best.yaml)."""
    from efficientnet import model_spec
    from nas.search.results import resolve_genotype_or_run

    model = None if args.model is None else model_name(args.model)
    return model_spec(resolve_genotype_or_run(args.genotype), model=model, width=args.width, depth=args.depth,
                      resolution=args.resolution, num_classes=num_classes(args))


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for r in cells:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "-"
    return str(value)


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit}"
    return f"{n:g}"
