"""Benchmark: random search vs regularized evolution vs RL on a fixed, deterministic NAS objective.

    python bench/controllers.py [--samples 1000] [--seeds 10] [--parallel 1]
                                [--controllers random,evolution,rl,rl:allow_repeats=true+min_entropy=0]

Objective (no training, deterministic): EfficientNet's soft MnasNet reward
``R = ACC(g) * (MACs(g) / 400e6) ** -0.07`` (Tan & Le 2019, section 4), with
MACs the real analytical multiply-adds of the genotype at 224x224, 1000
classes (``efficientnet.count_arch``), and ``ACC`` the accuracy surrogate:

    ACC(g) = 0.80 - 0.20 * (MACs / 1e8) ** -0.5     capacity, diminishing returns
             + sum over blocks i of block_term(i)   op / kernel / SE / skip effects
             + sum over i of pair(i, i+1)           adjacent-block interactions
             - 0.02 * (depth_ratio - width_ratio)^2 depth/width balance

* capacity: the log-reward is maximised near 400M MACs for a typical genotype
  (d log ACC / d log MACs = 0.07 there), so the cost term matters;
* block_term (block i of 7, depth d = i/6 in [0, 1]):
  SE +0.004 * (0.5 + d); kernel 5 +0.004 * (2d - 0.5) (hurts the first blocks,
  helps the late ones); op: regular conv +0.006 * (1 - 3d) (good only early,
  as in EfficientNetV2's fused blocks), sepconv -0.003, MBConv3 0, MBConv6
  +0.002; no skip -0.003 * layers;
* pair(i, i+1): a fixed table of N(0, 0.003) values over the (op, kernel)
  choices of two adjacent blocks, drawn once from
  ``numpy.random.default_rng(2019)`` (an NK-landscape-style epistasis term);
* balance: depth_ratio = log(total layers / base layers), width_ratio = mean
  of log(filters / base filters) over blocks (a block's base: the middle option of
  its layers / filters, the lower of two -- MobileNetV2's skeleton in the MnasNet space).

On another declared space (``--space``) ops other than MnasNet's four have no op
effect and share the pair table's rows by op name.

So the reward is no trivial function of one field: capacity trades against
the cost term, per-block effects flip sign with depth, adjacent blocks
interact.  Each controller runs ``--samples`` ask/tell rounds for ``--seeds``
seeds (``--parallel N`` keeps N asks pending and tells them in a random
order).  Printed: the median over seeds of the best reward after n samples,
and the samples each controller needs for that median to reach random
search's median best at ``--samples`` (the ratio to random's count); then
per controller the unique genotypes among the ``--samples`` evaluated (each
repeat is a full trial in a real search) next to the best reward.  A
controller entry ``name:key=value+key=value`` sets settings, e.g.
``rl:allow_repeats=true+min_entropy=0`` (the RL controller before issue 13:
repeats allowed, no entropy floor) as the peer of ``rl``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controllers import list_controllers, make_controller  # noqa: E402
from efficientnet import ModelSpec, count_arch  # noqa: E402
from search_spaces import OP_NAMES, Genotype, SearchSpace, load_space  # noqa: E402

TARGET_MACS = 400e6
W = -0.07
CHECKPOINTS = (10, 25, 50, 100, 200, 300, 500, 700, 1000)


#: MnasNet's ConvOps (op, expand) in the order of the pair table; their accuracy effect at depth d in [0, 1].
CONV_OPS = (("conv", 1), ("mbconv", 1), ("mbconv", 3), ("mbconv", 6))
OP_EFFECT = (lambda d: 0.006 * (1 - 3 * d), lambda d: -0.003, lambda d: 0.0, lambda d: 0.002)


def op_code(op: str, expand: int) -> int:
    """The ConvOp's row of the pair table; other ops of a declared space share rows by their op name."""
    pair = (op, expand)
    return CONV_OPS.index(pair) if pair in CONV_OPS else OP_NAMES.index(op) % len(CONV_OPS)


def base_value(values: tuple) -> int:
    """A position's base (MobileNetV2 skeleton) value of a field: its middle option, the lower of two
    (MnasNet's filters base-step/base/base+step and layers {base-1, base, base+1} never below 1)."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


class Objective:
    """The deterministic benchmark reward of the module docstring (MACs cached per genotype)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        table_rng = np.random.default_rng(2019)
        ok = len(CONV_OPS) * 2  # (op, kernel) pairs
        self.pairs = table_rng.normal(0.0, 0.003, size=(len(space.positions) - 1, ok, ok))
        self.base_layers = sum(base_value(p.values("layers")) for p in space.positions)
        self.base_filters = [base_value(p.values("filters")) for p in space.positions]
        self._macs: dict[Genotype, float] = {}

    def macs(self, g: Genotype) -> float:
        if g not in self._macs:
            self._macs[g] = float(count_arch(ModelSpec(g).arch(), 224, 1000)[1])
        return self._macs[g]

    def accuracy(self, g: Genotype) -> float:
        acc = 0.80 - 0.20 * (self.macs(g) / 1e8) ** -0.5
        n = len(g.blocks)
        codes = []
        for i, block in enumerate(g.blocks):
            d = i / max(n - 1, 1)
            op = op_code(block.op, block.expand)
            acc += 0.004 * (0.5 + d) * (block.se > 0)
            acc += 0.004 * (2 * d - 0.5) * (block.kernel == 5)
            acc += OP_EFFECT[op](d) if (block.op, block.expand) in CONV_OPS else 0.0
            acc -= 0.003 * block.layers * (not block.skip)
            codes.append(op * 2 + (block.kernel == 5))
        acc += sum(self.pairs[i, codes[i], codes[i + 1]] for i in range(n - 1))
        depth = math.log(sum(b.layers for b in g.blocks) / self.base_layers)
        width = float(np.mean([math.log(b.filters / f) for b, f in zip(g.blocks, self.base_filters)]))
        acc -= 0.02 * (depth - width) ** 2
        return acc

    def __call__(self, g: Genotype) -> float:
        return self.accuracy(g) * (self.macs(g) / TARGET_MACS) ** W


def parse_entry(entry: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value+key=value`` (values read as YAML scalars: true, 0, 0.25)."""
    import yaml

    name, _, rest = entry.partition(":")
    settings = {}
    for item in filter(None, rest.split("+")):
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value)
    return name, settings


def run(entry: str, space: SearchSpace, objective: Objective, seed: int, samples: int,
        parallel: int) -> tuple[np.ndarray, int, float]:
    """Best-so-far reward after each told sample, unique genotypes evaluated, final policy entropy (RL)."""
    name, settings = parse_entry(entry)
    controller = make_controller(name, space, seed=seed, settings=settings)
    evaluated: set[Genotype] = set()
    order = np.random.default_rng(10_000 + seed)  # the order results come back in (parallel > 1)
    pending: list[Genotype] = []
    best, curve, asked = -math.inf, np.empty(samples), 0
    for n in range(samples):
        while len(pending) < parallel and asked < samples:
            pending.append(controller.ask())
            asked += 1
        g = pending.pop(int(order.integers(len(pending))) if parallel > 1 else 0)
        reward = objective(g)
        controller.tell(g, reward)
        evaluated.add(g)
        best = max(best, reward)
        curve[n] = best
    return curve, len(evaluated), controller.stats().get("entropy", math.nan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=1, help="asks kept pending (results told in random order)")
    parser.add_argument("--space", default="mnasnet")
    parser.add_argument("--controllers", default="random,evolution,rl,rl:allow_repeats=true+min_entropy=0",
                        help="comma-separated; name:key=value+key=value sets settings (the default's last entry "
                             "is RL as it was before it avoided repeats: the peer of 'rl')")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.controllers.split(",")
    if "random" not in names:
        names.insert(0, "random")
    unknown = [n for n in (parse_entry(e)[0] for e in names) if n not in list_controllers()]
    if unknown:
        parser.error(f"unknown controller {unknown[0]!r}; known: {', '.join(list_controllers())}")
    space = load_space(args.space)  # a shipped name or a YAML declaration file
    objective = Objective(space)
    curves, seconds, unique, entropy = {}, {}, {}, {}
    for name in names:
        start = time.perf_counter()
        runs = [run(name, space, objective, s, args.samples, args.parallel) for s in range(args.seeds)]
        seconds[name] = (time.perf_counter() - start) / args.seeds
        curves[name] = np.stack([r[0] for r in runs])
        unique[name] = np.array([r[1] for r in runs])
        entropy[name] = np.array([r[2] for r in runs])
    medians = {name: np.median(c, axis=0) for name, c in curves.items()}
    target = medians["random"][-1]

    print(f"controllers on space {space.name!r} ({space.cardinality:.2g} points); reward = ACC * (MACs/400M)^-0.07 "
          f"(surrogate ACC, see docstring); {args.samples} samples x {args.seeds} seeds, {args.parallel} pending")
    print("median best reward after n samples")
    cols = {name: max(10, len(name)) for name in names}
    width = max(cols.values())
    print(f"{'n':>6} " + " ".join(f"{name:>{cols[name]}}" for name in names))
    for n in [c for c in CHECKPOINTS if c <= args.samples] + ([args.samples] if args.samples not in CHECKPOINTS else []):
        print(f"{n:>6} " + " ".join(f"{medians[name][n - 1]:>{cols[name]}.4f}" for name in names))
    print(f"samples to reach random's median best at {args.samples} ({target:.4f}); seeds reaching it by 300:")
    for name in names:
        hit = np.flatnonzero(medians[name] >= target)
        need = int(hit[0]) + 1 if hit.size else None
        by300 = int(np.sum(curves[name][:, min(300, args.samples) - 1] >= target))
        if name == "random":
            ratio = "the reference"
        else:
            ratio = f"{args.samples / need:5.2f}x fewer than random" if need else "not reached"
        print(f"  {name:>{width}}: {need if need else '>' + str(args.samples):>6} samples ({ratio}); "
              f"{by300}/{args.seeds} seeds by 300; {seconds[name]:.2f} s per run")
    print(f"unique genotypes evaluated per {args.samples} samples (min / median over seeds) next to the best reward "
          "(best seed / median); RL: policy entropy at the end")
    for name in names:
        ent = f"; entropy {np.nanmedian(entropy[name]):.2f} nats" if np.isfinite(entropy[name]).any() else ""
        print(f"  {name:>{width}}: unique {unique[name].min():>5} / {np.median(unique[name]):>6.0f} "
              f"({np.median(unique[name]) / args.samples:.1%}); best {curves[name][:, -1].max():.4f} / "
              f"{np.median(curves[name][:, -1]):.4f}{ent}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
