"""Benchmark: analytical params + MACs of a genotype vs building its module and counting it.

A search filters thousands of candidates by cost (MnasNet's reward ACC*(cost/T)^w,
Tan et al. 2019, section 3), so the cost must be cheap.  Ours walks the stage table
(``efficientnet.count_spec``: genotype -> stage configs -> scaled -> per-stage costs,
cached by (stage, input size)).  The peer is what one does without it: build the
``nn.Module``, sum ``numel`` of its parameters and count multiply-adds with forward
hooks (``efficientnet.measure_macs``), measured in the same run on a subset.

Reported, in microseconds per genotype (best and median of ``--repeats`` passes: the
machine is a shared 2-core VM, so a single pass mostly measures the neighbours):
  cold    a pass over N random mnasnet genotypes with every cache emptied first;
  repeat  the same N genotypes again (all stages cached);
  fresh   N new random genotypes with the caches warm (steady state of a search);
  peer    build + count on the first ``--peer`` genotypes (and the two counts must agree).

Run: ``python bench/cost_speed.py [--n 10000] [--peer 200] [--resolution 224] [--space NAME_OR_FILE]``
(the default space is the shipped declaration ``search_spaces/declarations/mnasnet.yaml``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from efficientnet import ModelSpec, build_model, count_spec, layer_cost, measure_macs
from efficientnet.counting import _stage_cost
from efficientnet.layout import _stage_layers
from search_spaces import load_space

GOAL_US = 50.0


def clear_caches() -> None:
    for fn in (layer_cost, _stage_cost, _stage_layers):
        fn.cache_clear()


def analytic_pass(genotypes, resolution: int) -> tuple[float, list[tuple[int, int]]]:
    """(microseconds per genotype, counts) of the analytical count over ``genotypes``."""
    start = time.perf_counter()
    counts = [count_spec(ModelSpec(g, resolution=resolution)) for g in genotypes]
    return (time.perf_counter() - start) / len(genotypes) * 1e6, counts


def peer_pass(genotypes, resolution: int) -> tuple[list[float], list[tuple[int, int]]]:
    """Per-genotype seconds and counts of building the module and counting params and hooked MACs."""
    times, counts = [], []
    for g in genotypes:
        start = time.perf_counter()
        model = build_model(ModelSpec(g, resolution=resolution))
        params = sum(p.numel() for p in model.parameters())
        macs = measure_macs(model, resolution)
        times.append(time.perf_counter() - start)
        counts.append((params, macs))
    return times, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="random genotypes per analytical pass")
    parser.add_argument("--peer", type=int, default=200, help="genotypes built and hook-counted by the peer")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", default="mnasnet", help="a shipped space or a YAML declaration (default mnasnet)")
    parser.add_argument("--repeats", type=int, default=3, help="passes of each analytical measurement")
    args = parser.parse_args(argv)
    if args.n < 1 or args.peer < 1 or args.peer > args.n or args.repeats < 1:
        parser.error("need --n >= 1, 1 <= --peer <= --n and --repeats >= 1")

    space = load_space(args.space)
    rng = np.random.default_rng(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.n)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.n} random {space.name} genotypes "
          f"at {args.resolution}x{args.resolution}, 1000 classes")

    cold, repeat, steady = [], [], []
    for _ in range(args.repeats):
        clear_caches()
        us, counts = analytic_pass(genotypes, args.resolution)
        cold.append(us)
        us, again = analytic_pass(genotypes, args.resolution)
        repeat.append(us)
        if again != counts:
            raise RuntimeError("the cached count differs from the cold count")
    for _ in range(args.repeats):  # caches stay warm; each pass sees genotypes it has not seen
        steady.append(analytic_pass([space.sample(rng) for _ in range(args.n)], args.resolution)[0])
    cold_us, repeat_us, fresh_us = min(cold), min(repeat), min(steady)
    # the peer's own subset, analytically, with cold caches (the fairest per-genotype comparison)
    subset = genotypes[:args.peer]
    clear_caches()
    subset_cold_us, subset_counts = analytic_pass(subset, args.resolution)

    peer_times, peer_counts = peer_pass(subset, args.resolution)
    mismatches = sum(a != b for a, b in zip(subset_counts, peer_counts))
    peer_us = statistics.fmean(peer_times) * 1e6

    hits = _stage_cost.cache_info()
    med = statistics.median
    print(f"analytical cold   {cold_us:8.1f} us/genotype (median {med(cold):.1f})  caches emptied first")
    print(f"analytical repeat {repeat_us:8.1f} us/genotype (median {med(repeat):.1f})  same genotypes again")
    print(f"analytical fresh  {fresh_us:8.1f} us/genotype (median {med(steady):.1f})  new genotypes, caches warm;"
          f" goal <= {GOAL_US:g}: {'met' if fresh_us <= GOAL_US else 'NOT met'}")
    print(f"  stage cache after the subset pass: {hits.currsize} stages, {hits.hits} hits / {hits.misses} misses")
    print(f"peer build+numel+hooks {peer_us:9.1f} us/genotype on {args.peer} genotypes "
          f"(median {statistics.median(peer_times) * 1e3:.1f} ms); analytical on the same, cold: {subset_cold_us:.1f} us")
    print(f"counts equal on {args.peer - mismatches}/{args.peer} genotypes")
    print(f"ratio peer / analytical: {peer_us / subset_cold_us:,.0f}x (cold), {peer_us / fresh_us:,.0f}x (steady state)")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
