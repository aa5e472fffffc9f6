"""``nas show``: the stage table, parameters and multiply-adds of a genotype."""

from __future__ import annotations

import argparse

from efficientnet import count_spec, walk
from search_spaces import CONV_OP_NAMES, CONV_OPS

from .common import add_model_options, human, print_json, print_table, spec_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="stage table, params and MACs of a genotype or model",
                       description="Print the stage table (the paper's Table 1), parameters and "
                                   "multiply-adds of a genotype at a width, depth and resolution.")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def stage_rows(spec) -> list[dict]:
    arch = spec.arch()
    layers = walk(arch, spec.resolution)
    rows = [{"stage": 0, "operator": "conv3x3 (stem)", "resolution": layers[0].in_size, "in": 3,
             "out": arch.stem, "layers": 1, "stride": arch.stem_stride}]
    start = 1
    for i, stage in enumerate(arch.stages, start=1):
        op = CONV_OP_NAMES[CONV_OPS.index((stage.op, stage.expand))] if (stage.op, stage.expand) in CONV_OPS \
            else f"{stage.op}{stage.expand}"
        rows.append({"stage": i, "operator": f"{op} k{stage.kernel}x{stage.kernel}", "resolution":
                     layers[start].in_size, "in": stage.in_filters, "out": stage.out_filters,
                     "layers": stage.layers, "stride": stage.stride, "se": stage.se, "skip": stage.skip})
        start += stage.layers
    rows.append({"stage": len(arch.stages) + 1, "operator": "conv1x1 & pool & fc (head)",
                 "resolution": layers[-1].in_size, "in": layers[-1].in_filters, "out": arch.head, "layers": 1,
                 "stride": 1})
    return rows


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    params, macs = count_spec(spec)
    rows = stage_rows(spec)
    if args.json:
        print_json({"genotype": spec.genotype.to_string(), "timm": spec.genotype.to_timm(), "width": spec.width,
                    "depth": spec.depth, "resolution": spec.resolution, "num_classes": spec.num_classes,
                    "params": params, "macs": macs, "stages": rows})
        return 0
    print(f"genotype: {spec.genotype.to_string()}")
    print(f"width {spec.width:g}  depth {spec.depth:g}  resolution {spec.resolution}  classes {spec.num_classes}")
    print_table(rows, ["stage", "operator", "resolution", "in", "out", "layers", "stride", "se", "skip"])
    print(f"params: {params:,} ({human(params)})   MACs: {macs:,} ({human(macs)})")
    return 0
