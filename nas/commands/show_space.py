"""``nas show --space NAME_OR_FILE``: a space's decisions, options, cardinality, and its largest and smallest network.

The largest (smallest) network is the genotype with the most (fewest) MACs on the model of the options
(default B0's: width 1, depth 1, 224 px), found by coordinate search over the decisions from the all-last
(all-first) options: each decision in turn takes its best option given the others, until a full pass
changes nothing.  In a space where a larger option never makes another layer cheaper (every MBConv space
effnas ships) that is the exact extreme; the JSON says how many genotypes were counted.
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import human, model_name, num_classes, print_json, print_table

#: Full passes of the coordinate search before it stops even if still improving (a space this unruly is rare).
MAX_PASSES = 8


def extreme(space, cost, largest: bool) -> tuple[list[int], int]:
    """Option indices of the genotype that maximises (``largest``) or minimises ``cost(genotype)``; and counts."""
    sign = 1 if largest else -1
    codes = [s - 1 for s in space.decision_sizes] if largest else [0] * len(space.decision_sizes)
    best, counted = sign * cost(space.decode(codes)), 1
    for _ in range(MAX_PASSES):
        changed = False
        for i, size in enumerate(space.decision_sizes):
            for option in range(size):
                if option == codes[i]:
                    continue
                trial = codes[:i] + [option] + codes[i + 1:]
                value, counted = sign * cost(space.decode(trial)), counted + 1
                if value > best:
                    best, codes, changed = value, trial, True
        if not changed:
            break
    return codes, counted


def describe(space, args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``nas show --space`` prints, as plain data."""
    from efficientnet import count_spec, model_spec
    from search_spaces.positions import show_option

    model = None if args.model is None else model_name(args.model)

    def spec(g):
        return model_spec(g, model=model, width=args.width, depth=args.depth, resolution=args.resolution,
                          num_classes=num_classes(args))

    def macs(g):
        return count_spec(spec(g))[1]

    decisions = [{"name": f"b{p.index + 1}_{d.name}", "stage": p.stage, "layer": p.layer,
                  "options": [show_option(o, d.fields) if len(d.fields) > 1 else _scalar(o, d.fields)
                              for o in d.options]}
                 for p in space.positions for d in p.decisions]
    out: dict[str, Any] = {"name": space.name, "source": space.source, "frame": _frame(space.frame),
                           "blocks": len(space.positions), "decisions": decisions,
                           "cardinality": space.cardinality}
    for label, largest in (("largest", True), ("smallest", False)):
        codes, counted = extreme(space, macs, largest)
        g = space.decode(codes)
        s = spec(g)
        params, m = count_spec(s)
        out[label] = {"genotype": g.to_string(), "params": params, "macs": m, "genotypes_counted": counted,
                      "width": s.width, "depth": s.depth, "resolution": s.resolution}
    return out


def _scalar(option, fields) -> str:
    from search_spaces.positions import show

    return show(option[fields[0]]) if fields else "{}"


def _frame(frame) -> dict:
    import dataclasses

    return dataclasses.asdict(frame)


def run_space(args: argparse.Namespace) -> int:
    from nas.experiment.space import resolve_space, space_value

    space = resolve_space(space_value(args.space, None, "--space"), "--space")
    info = describe(space, args)
    if args.json:
        print_json(info)
        return 0
    frame = info["frame"]
    print(f"space: {space.name}" + (f"  ({space.source})" if space.source else ""))
    print(f"frame: stem {frame['stem']} stride {frame['stem_stride']}, head {frame['head']}, activation "
          f"{frame['activation']}")
    print_table([{"decision": d["name"], "options": " | ".join(d["options"]), "count": len(d["options"])}
                 for d in info["decisions"]], ["decision", "count", "options"])
    print(f"cardinality: {info['cardinality']:,} ({info['cardinality']:.3g}) genotypes, "
          f"{len(info['decisions'])} decisions")
    for label in ("largest", "smallest"):
        e = info[label]
        print(f"{label} (MACs at width {e['width']:g} depth {e['depth']:g} {e['resolution']}px): "
              f"params {e['params']:,} ({human(e['params'])})  MACs {e['macs']:,} ({human(e['macs'])})")
        print(f"  {e['genotype']}")
    return 0


__all__ = ["describe", "extreme", "run_space"]
