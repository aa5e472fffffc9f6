"""``nas profile``: build a latency table for a device, validate it, or measure one model.

    nas profile --target cpu --threads 1 --out lut.json          # table of the mnasnet space at 224
    nas profile --validate lut.json --genotypes 20                # predicted vs measured, error and rank corr.
    nas profile --measure b0 --target cpu --threads 1             # one model end to end (e.g. to set T)
"""

from __future__ import annotations

import argparse
import logging
import time

from nas.cost.latency.measure import BACKENDS, DTYPES, MeasureSettings

from .common import int_at_least, positive_float, positive_int, print_json, print_table

log = logging.getLogger(__name__)


_count = int_at_least(0)
#: The defaults of the measurement options: the library's, never retyped here (no torch imported for them).
_M = MeasureSettings()


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Measure a per-layer latency lookup table on a target (PyTorch CPU, CUDA, "
                     "ONNX Runtime), check its predictions against end-to-end measurements, or "
                     "measure one model.")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", metavar="LUT", help="build a table and write it here (.json, or .yaml)")
    mode.add_argument("--validate", metavar="LUT", help="measure random genotypes end to end against this table")
    mode.add_argument("--measure", metavar="NAME_OR_GENOTYPE", help="measure one genotype's model end to end")

    t = p.add_argument_group("target (for --out and --measure; --validate uses the table's)")
    t.add_argument("--target", choices=list(BACKENDS), default=_M.backend, help="runtime (default %(default)s)")
    t.add_argument("--threads", type=positive_int, default=_M.threads, help="intra-op CPU threads (default %(default)s)")
    t.add_argument("--batch", type=positive_int, default=_M.batch,
                   help="batch size of a measured pass (default %(default)s)")
    t.add_argument("--dtype", choices=list(DTYPES), default=_M.dtype, help="precision, cpu and cuda (default %(default)s)")
    t.add_argument("--device", type=_count, default=_M.device, help="CUDA device index (default %(default)s)")
    t.add_argument("--warmup", type=_count, default=_M.warmup,
                   help="untimed passes before each round (default %(default)s)")
    t.add_argument("--repeats", type=positive_int, default=_M.repeats, help="timed passes per round (default %(default)s)")
    t.add_argument("--rounds", type=positive_int, default=_M.rounds,
                   help="rounds, interleaved across modules (default %(default)s)")
    t.add_argument("--clock", choices=["wall", "cpu"], default=_M.clock,
                   help="wall time, or the thread's CPU time (threads 1; steadier on a machine shared with other "
                        "jobs) (default %(default)s)")
    t.add_argument("--statistic", choices=["median", "min"], default=_M.statistic,
                   help="which pass time is the latency (default %(default)s)")
    t.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin threads to CPUs (by default they are pinned)")
    t.add_argument("--default-malloc", dest="steady_malloc", action="store_false",
                   help="keep glibc's adaptive malloc thresholds (by default they are fixed while measuring)")

    m = p.add_argument_group("model (for --out and --measure)")
    m.add_argument("--space", default="mnasnet", help="search space: a shipped name or a YAML declaration file (default %(default)s)")
    m.add_argument("--resolution", type=positive_int, default=None,
                   help="input resolution of the target model (default: TargetModel's, 224)")
    m.add_argument("--width", type=positive_float, default=None,
                   help="width multiplier of the target model (default: TargetModel's, 1.0)")
    m.add_argument("--depth", type=positive_float, default=None,
                   help="depth multiplier of the target model (default: TargetModel's, 1.0)")
    m.add_argument("--num-classes", type=positive_int, default=None,
                   help="classifier outputs (default: TargetModel's, 1000)")

    b = p.add_argument_group("table building (--out) and validation (--validate)")
    b.add_argument("--samples", type=positive_int, default=None,
                   help="table only the layers of N sampled genotypes (+ B0) instead of the whole space")
    b.add_argument("--calibrate", type=_count, default=5,
                   help="genotypes measured end to end to calibrate the sum (default %(default)s)")
    b.add_argument("--seed", type=_count, default=None, help="sampling seed (default 0 for --out, 1 for --validate)")
    b.add_argument("--genotypes", type=positive_int, default=20,
                   help="random genotypes to validate on (default %(default)s)")
    b.add_argument("--measure-missing", action="store_true",
                   help="--validate: measure layers the table lacks, and save them into it")
    b.add_argument("--max-error", type=positive_float, default=None,
                   help="--validate: exit 1 if the mean absolute relative error is above this (e.g. 0.1)")
    b.add_argument("--table", metavar="LUT", default=None, help="--measure: also print this table's prediction")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    return MeasureSettings(backend=args.target, threads=args.threads, batch=args.batch, dtype=args.dtype,
                           warmup=args.warmup, repeats=args.repeats, rounds=args.rounds, pin=args.pin,
                           device=args.device, clock=args.clock, statistic=args.statistic,
                           steady_malloc=args.steady_malloc)


def _target(args: argparse.Namespace):
    """The target model of the options (unset ones: ``TargetModel``'s defaults)."""
    from nas.cost.target import TargetModel

    given = {k: getattr(args, k) for k in ("resolution", "num_classes", "width", "depth") if getattr(args, k) is not None}
    return TargetModel(**given)


def run(args: argparse.Namespace) -> int:
    if args.out:
        from nas.files import check_writable

        check_writable(args.out, "--out (the latency table)", make_folder=True)  # before minutes of measuring
        return _build(args)
    if args.validate:
        return _validate(args)
    return _measure(args)


def _build(args: argparse.Namespace) -> int:
    from nas.cost.latency import build_table
    from nas.experiment.space import resolve_space, space_value

    space = resolve_space(space_value(args.space, None, "--space"), "--space")
    settings, target = _settings(args), _target(args)
    start = time.monotonic()
    table = build_table(space, target, settings, samples=args.samples, calibrate_genotypes=args.calibrate,
                        seed=0 if args.seed is None else args.seed)
    path = table.save(args.out)
    took = time.monotonic() - start
    from nas.cost.latency.measure import describe_noise

    noise = table.target["noise"]
    summary = {"table": str(path), "entries": len(table.entries), "space": space.name, "backend": settings.backend,
               "device": table.target["device"], "threads": settings.threads, "batch": settings.batch,
               "resolution": target.resolution, "scale": table.scale, "offset_ms": table.offset_ms,
               "calibration_error": table.calibration.get("mean_abs_rel_error"), "seconds": round(took, 1),
               "noise": noise}
    if args.json:
        print_json(summary)
        return 0
    print(f"wrote {path}: {len(table.entries)} layers of space {space.name!r} at {target.resolution}x"
          f"{target.resolution} on {settings.backend} ({table.target['device']}, {settings.threads} threads, "
          f"batch {settings.batch}) in {took:.0f} s")
    if table.calibration:
        err = table.calibration["mean_abs_rel_error"]
        print(f"calibration on {len(table.calibration['genotypes'])} genotypes: latency = {table.scale:.3f} x "
              f"layer sum {table.offset_ms:+.3f} ms (fit error {100 * err:.1f}%)")
    print(describe_noise(noise))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from nas.cost.latency import LatencyTable, validate_table, validation_genotypes

    table = LatencyTable.load(args.validate)
    genotypes = validation_genotypes(table, args.genotypes, 1 if args.seed is None else args.seed)
    report = validate_table(table, genotypes, measure_missing=args.measure_missing)
    if report.added_layers:
        table.save(args.validate)
    from nas.cost.latency.measure import describe_noise

    summary = {"table": args.validate, **report.summary(table.settings.clock), "table_noise": table.noise(),
               "backend": table.settings.backend,
               "device": table.target.get("device"), "resolution": table.model.resolution,
               "space": table.model.space, "clock": table.settings.clock, "statistic": table.settings.statistic}
    if args.json:
        print_json({**summary, "rows": [{"genotype": r.genotype, "predicted_ms": r.predicted_ms,
                                         "measured_ms": r.measured_ms, "iqr_ms": r.iqr_ms} for r in report.rows]})
    else:
        rows = [{"#": i, "predicted_ms": round(r.predicted_ms, 3), "measured_ms": round(r.measured_ms, 3),
                 "iqr_ms": round(r.iqr_ms, 3), "error_%": round(100 * r.rel_error, 1)}
                for i, r in enumerate(report.rows, start=1)]
        print_table(rows, ["#", "predicted_ms", "measured_ms", "iqr_ms", "error_%"])
        added = f"; measured {report.added_layers} missing layers into the table" if report.added_layers else ""
        print(f"{len(report.rows)} genotypes of space {table.model.space!r} at {table.model.resolution}: mean abs "
              f"relative error {100 * report.mean_abs_rel_error:.1f}% (max {100 * report.max_abs_rel_error:.1f}%), "
              f"Spearman rank correlation {report.spearman:.3f}{added}")
        print(f"measurement {describe_noise(summary['measurement_noise'], 'validation models')}")
        print(f"table {describe_noise(summary['table_noise'])}")
        print("an error within the measurement noise (the spread above) is noise, not a wrong table")
    if args.max_error is not None and report.mean_abs_rel_error > args.max_error:
        print(f"nas: mean absolute relative error {report.mean_abs_rel_error:.3f} is above --max-error "
              f"{args.max_error:g}")
        return 1
    return 0


def _measure(args: argparse.Namespace) -> int:
    from nas.cost.latency import LatencyCost, measure_genotype
    from search_spaces import resolve_genotype

    genotype = resolve_genotype(args.measure)
    if args.table:
        cost = LatencyCost.from_table(args.table)
        settings, target = cost.table.settings, cost.target
    else:
        cost, settings, target = None, _settings(args), _target(args)
    predicted = cost.cost(genotype) if cost is not None else None  # a missing layer fails before measuring
    m = measure_genotype(genotype, target, settings)
    measured = m.value(settings.statistic)
    out = {"genotype": genotype.to_string(), "backend": settings.backend, "threads": settings.threads,
           "batch": settings.batch, "dtype": settings.dtype, "resolution": target.resolution, "width": target.width,
           "depth": target.depth, "num_classes": target.num_classes, "clock": settings.clock,
           "statistic": settings.statistic, "latency_ms": measured, "median_ms": m.median_ms, "min_ms": m.min_ms,
           "iqr_ms": m.iqr_ms, "stdev_ms": m.stdev_ms, "passes": m.repeats}
    if predicted is not None:
        out["predicted_ms"] = predicted
    if args.json:
        print_json(out)
        return 0
    print(f"{settings.backend} {settings.dtype}, {settings.threads} threads, batch {settings.batch}, "
          f"{target.resolution}x{target.resolution}: {measured:.3f} ms ({settings.statistic} of {m.repeats} passes, "
          f"{settings.clock} clock; IQR {m.iqr_ms:.3f} ms, min {m.min_ms:.3f} ms)")
    if predicted is not None:
        print(f"table {args.table} predicts {predicted:.3f} ms ({100 * (predicted - measured) / measured:+.1f}%)")
    return 0
