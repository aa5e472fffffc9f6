"""Benchmark: the latency lookup table against its peer, MACs as a latency proxy, measured in the same run.

    python bench/latency_lut.py [--genotypes 20] [--resolution 128] [--clock cpu] [--threads 1]

MnasNet (arXiv:1807.11626, section 2 and figure 1) argues that multiply-adds
are an inaccurate proxy for latency.  This program measures ``--genotypes``
random genotypes of the MnasNet space end to end on this CPU and predicts
their latency two ways, both calibrated on the same four other genotypes
measured end to end:

* LUT: the per-layer table of ``nas.cost.latency`` (layers measured in isolation),
  ``scale * sum + offset`` fitted by ``fit_calibration``;
* MACs: ``scale * MACs + offset`` fitted by the same function.

It prints each predictor's mean absolute relative error and Spearman rank
correlation against the measurements, the ratio LUT / MACs of both, and how
long one cost query takes with the table, with the analytical MACs count and
by measuring the model (ratios against the table).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from nas.cost.analytic import MacsCost

from nas.cost.target import TargetModel
from nas.cost.latency import (LatencyCost, MeasureSettings, build_table, fit_calibration, measure_genotype, spearman,
                              validate_table, validation_genotypes)
from search_spaces import Genotype, get_space


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genotypes", type=int, default=20)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", choices=["wall", "cpu"], default="cpu")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    space = get_space("mnasnet")
    target = TargetModel(resolution=args.resolution)
    settings = MeasureSettings(threads=args.threads, clock=args.clock)
    t0 = time.perf_counter()
    table = build_table(space, target, settings, samples=4, calibrate_genotypes=4, seed=0)
    genotypes = validation_genotypes(table, args.genotypes, args.seed)
    report = validate_table(table, genotypes, measure_missing=True)
    measured = np.array([r.measured_ms for r in report.rows])
    lut = np.array([r.predicted_ms for r in report.rows])

    macs = MacsCost(target)
    cal = [Genotype.from_string(s) for s in table.calibration["genotypes"]]
    scale, offset = fit_calibration([macs.cost(g) for g in cal], table.calibration["measured_ms"])
    by_macs = np.array([scale * macs.cost(g) + offset for g in genotypes])

    def scores(pred: np.ndarray) -> tuple[float, float]:
        return float(np.mean(np.abs(pred - measured) / measured)), spearman(pred, measured)

    (lut_err, lut_rho), (mac_err, mac_rho) = scores(lut), scores(by_macs)
    print(f"{len(genotypes)} MnasNet-space genotypes at {args.resolution}x{args.resolution}, {settings.backend}, "
          f"{args.threads} thread(s), {args.clock} clock; measured {measured.min():.1f}..{measured.max():.1f} ms "
          f"({time.perf_counter() - t0:.0f} s to build, calibrate and measure)")
    print(f"  LUT : mean abs rel error {100 * lut_err:5.1f}%   Spearman {lut_rho:.3f}")
    print(f"  MACs: mean abs rel error {100 * mac_err:5.1f}%   Spearman {mac_rho:.3f}")
    print(f"  error ratio LUT/MACs: {lut_err / mac_err:.2f}   rank-correlation ratio LUT/MACs: {lut_rho / mac_rho:.2f}")

    cost = LatencyCost(table, target)
    t = time.perf_counter()
    for g in genotypes:
        cost.table.predict(g)  # what LatencyCost.cost does on a genotype it has not cached
    lut_s = (time.perf_counter() - t) / len(genotypes)
    t = time.perf_counter()
    for g in genotypes:
        macs.cost(g)
    macs_s = (time.perf_counter() - t) / len(genotypes)
    t = time.perf_counter()
    measure_genotype(genotypes[0], target, settings)
    measure_s = time.perf_counter() - t
    print(f"  one cost query: LUT {1e6 * lut_s:.0f} us, MACs {1e6 * macs_s:.0f} us ({macs_s / lut_s:.2f}x the LUT), "
          f"measuring {measure_s:.2f} s ({measure_s / lut_s:.0f}x the LUT)")


if __name__ == "__main__":
    main()
