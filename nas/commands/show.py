"""``nas show``: the stage table, parameters and multiply-adds of a genotype (``--space``: of a space, show_space).

``--stem N``, ``--head N``, ``--stem-scaling scaled|fixed`` and
``--head-scaling scaled|fixed|up`` override the genotype's frame (the same as
the string items ``stem<N>[_fixed]`` / ``head<N>[_fixed|_up]``).
"""

from __future__ import annotations

import argparse
import dataclasses

from nas.config import ConfigError

from .common import add_model_options, human, positive_int, print_json, print_table, spec_from_args

_OP_NAMES = {"nodw": "tf-c1", "irpw": "ir-pw"}


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Print the stage table (the paper's Table 1), parameters and "
                     "multiply-adds of a genotype at a width, depth and resolution.")
    add_model_options(p, genotype_optional=True)
    add_frame_options(p)
    p.add_argument("--space", default=None, metavar="NAME_OR_FILE",
                   help="instead of a genotype: a space (shipped name or YAML declaration): its decisions, options, "
                        "cardinality, and its largest and smallest network (params, MACs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def add_frame_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stem", type=positive_int, default=None, help="stem width at width 1.0 (default: the genotype's)")
    p.add_argument("--head", type=positive_int, default=None, help="head width at width 1.0 (default: the genotype's)")
    from search_spaces import HEAD_SCALINGS, STEM_SCALINGS

    p.add_argument("--stem-scaling", choices=STEM_SCALINGS, default=None,
                   help="whether --width scales the stem (default: the genotype's)")
    p.add_argument("--head-scaling", choices=HEAD_SCALINGS, default=None,
                   help="whether --width scales the head; up: only upwards (default: the genotype's)")


def frame_changes(args: argparse.Namespace) -> dict:
    names = ("stem", "head", "stem_scaling", "head_scaling")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def operator(op: str, expand: int) -> str:
    """The stage table's operator name: MnasNet's (conv, sepconv, mbconv3, mbconv6), else the op and expansion."""
    if op in ("conv", "skip"):
        return op
    if op == "mbconv":
        return "sepconv" if expand == 1 else f"mbconv{expand}"
    return f"{_OP_NAMES.get(op, op)}{'' if op == 'irpw' else f' e{expand}'}" if op in _OP_NAMES else f"{op}{expand}"


def stage_rows(spec) -> list[dict]:
    from efficientnet import walk

    arch = spec.arch()
    layers = walk(arch, spec.resolution)
    rows = [{"stage": 0, "operator": "conv3x3 (stem)", "resolution": layers[0].in_size, "in": 3,
             "out": arch.stem, "layers": 1, "stride": arch.stem_stride}]
    start = 1
    for i, stage in enumerate(arch.stages, start=1):
        op = operator(stage.op, stage.expand)
        kernel = 3 if stage.op == "nodw" else stage.kernel  # TF's c1: a 3x3 expansion whatever k says
        rows.append({"stage": i, "operator": f"{op} k{kernel}x{kernel}", "resolution":
                     layers[start].in_size, "in": stage.in_filters, "out": stage.out_filters,
                     "layers": stage.layers, "stride": stage.stride, "se": stage.se, "skip": stage.skip})
        start += stage.layers
    rows.append({"stage": len(arch.stages) + 1, "operator": "conv1x1 & pool & fc (head)",
                 "resolution": layers[-1].in_size, "in": layers[-1].in_filters, "out": arch.head, "layers": 1,
                 "stride": 1})
    return rows


def run(args: argparse.Namespace) -> int:
    from efficientnet import count_spec
    from search_spaces import ZOO

    if (args.space is None) == (args.genotype is None):
        raise ConfigError("nas show: give a genotype (NAME_OR_GENOTYPE) or --space NAME_OR_FILE, not "
                          + ("both" if args.space else "neither"))
    if args.space is not None:
        from .show_space import run_space

        return run_space(args)
    spec = spec_from_args(args)
    changes = frame_changes(args)
    if changes:
        spec = dataclasses.replace(spec, genotype=spec.genotype.with_frame(**changes))
    params, macs = count_spec(spec)
    rows = stage_rows(spec)
    try:
        timm, timm_error = spec.genotype.to_timm(), None
    except ValueError as err:
        timm, timm_error = None, str(err)
    frame = spec.genotype.frame
    entry = ZOO.get(args.genotype.strip())
    if args.json:
        print_json({"genotype": spec.genotype.to_string(), "timm": timm, "timm_error": timm_error,
                    "width": spec.width, "depth": spec.depth, "resolution": spec.resolution,
                    "num_classes": spec.num_classes, "params": params, "macs": macs,
                    "frame": dataclasses.asdict(frame), "activation": frame.activation,
                    "stages": rows})
        return 0
    print(f"genotype: {spec.genotype.to_string()}")
    print(f"timm: {timm}" if timm else f"timm: not expressible ({timm_error})")
    print(f"width {spec.width:g}  depth {spec.depth:g}  resolution {spec.resolution}  classes {spec.num_classes}"
          f"  stem {frame.stem} ({frame.stem_scaling})  head {frame.head} ({frame.head_scaling})"
          f"  activation {frame.activation}" + (f" (SE {frame.se_activation})" if frame.se_activation else "")
          + (f"  ({entry.source})" if entry else ""))
    print_table(rows, ["stage", "operator", "resolution", "in", "out", "layers", "stride", "se", "skip"])
    print(f"params: {params:,} ({human(params)})   MACs: {macs:,} ({human(macs)})")
    return 0
