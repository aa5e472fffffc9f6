"""``nas train``: train a (scaled) genotype with the EfficientNet recipe on Ray Train.

``nas train GENOTYPE_OR_RUN_DIR CONFIG [--model efficientnet-bN | --phi N] [--width W --depth D
--resolution R] [--workers N] [--resume] [--address ADDR] [--set key=value]``

The genotype is a name, a block string, or a search run dir (its ``best.yaml``).
CONFIG holds the sections ``model``, ``train``, ``data``, ``workers``, ``output``
(see ``nas.experiment.train`` and ``experiments/train_quick.yaml``); the command-line
scale options win over ``model``.  The run dir ``<output.dir>/<output.name>``
receives a checkpoint per epoch, ``metrics.jsonl``, TensorBoard curves, and at
the end ``weights.pt`` (a state dict for ``efficientnet.build_model``),
``model.yaml`` and ``result.json``; ``nas export RUN_DIR --onnx FILE`` exports it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from .common import MODEL_HELP, add_run_options, positive_float, positive_int, print_json

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Train a genotype at a scale with the EfficientNet recipe on Ray Train workers "
                     "(DDP), checkpointing every epoch; the weights land in the run dir.")
    p.add_argument("genotype", metavar="GENOTYPE_OR_RUN_DIR",
                   help="b0, mnasnet-a1, a block string, or a search run directory (its best.yaml genotype)")
    p.add_argument("config", metavar="CONFIG", help="YAML with sections model, train, data, workers, output")
    p.add_argument("--model", default=None, metavar="NAME",
                   help=f"official coefficients, {MODEL_HELP} (overrides model.name)")
    p.add_argument("--phi", type=int, default=None,
                   help="compound scaling with alpha 1.2, beta 1.1, gamma 1.15 at this phi (overrides model.phi)")
    p.add_argument("--width", type=positive_float, default=None, help="width multiplier (overrides the scale)")
    p.add_argument("--depth", type=positive_float, default=None, help="depth multiplier (overrides the scale)")
    p.add_argument("--resolution", type=positive_int, default=None, help="input resolution (overrides the scale)")
    p.add_argument("--workers", type=positive_int, default=None, help="Ray Train workers (overrides workers.count)")
    add_run_options(p, "train.epochs=5")
    p.add_argument("--json", action="store_true", help="print the final result as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    p.set_defaults(func=run)


def model_config(exp, args: argparse.Namespace):
    """The YAML ``model`` section with the command line's scale options applied."""
    if args.model is not None and args.phi is not None:
        raise ValueError("--model and --phi both set the scale; pass one of them")
    m = exp.model
    changes = {k: getattr(args, k) for k in ("width", "depth", "resolution") if getattr(args, k) is not None}
    if args.model is not None:
        changes.update(name=args.model, phi=None)
    if args.phi is not None:
        changes.update(name=None, phi=args.phi)
    return dataclasses.replace(m, **changes)


def scale(model, where: str = "model") -> tuple[float, float, int, float]:
    """(width, depth, resolution, dropout) of the model section: official row or compound phi, then overrides.

    A scale out of range (``--phi 100`` is a depth multiplier of 8e7) is one line naming ``where``.
    """
    from efficientnet import coefficients
    from efficientnet.compound import PAPER_COEFFICIENTS
    from nas.cost.target import check_scale

    c = PAPER_COEFFICIENTS.at(model.phi) if model.phi is not None else coefficients(model.name or "efficientnet-b0")
    out = (c.width if model.width is None else model.width, c.depth if model.depth is None else model.depth,
           c.resolution if model.resolution is None else model.resolution, c.dropout)
    check_scale(out[0], out[1], out[2], where, "lower the scale (EfficientNet-B7 is phi 7: width 2.0, depth 3.1)")
    return out


def build_job(args: argparse.Namespace):
    from nas.config import ConfigError
    from nas.experiment.train import load_train_experiment
    from nas.search.results import resolve_genotype_or_run
    from nas.train.loop import TrainJob

    exp = load_train_experiment(args.config, args.overrides)
    if args.workers is not None:
        exp = dataclasses.replace(exp, workers=dataclasses.replace(exp.workers, count=args.workers))
        if exp.train.batch_size % args.workers:
            raise ConfigError(f"--workers {args.workers}: train.batch_size ({exp.train.batch_size}) must be a "
                              "multiple of the number of workers")
    genotype = resolve_genotype_or_run(args.genotype)
    model = model_config(exp, args)
    where = f"--phi {args.phi}" if args.phi is not None else ("--model/--width/--depth/--resolution" if any(
        getattr(args, k) is not None for k in ("model", "width", "depth", "resolution")) else "model")
    width, depth, resolution, table_dropout = scale(model, where)
    dropout = exp.train.dropout if exp.train.dropout is not None else table_dropout
    threads = exp.workers.threads or max(1, int(exp.workers.cpus))
    job = TrainJob(genotype=genotype.to_string(), width=width, depth=depth, resolution=resolution, dropout=dropout,
                   stem_stride=genotype.frame.stem_stride if model.stem_stride is None else model.stem_stride,
                   padding=model.padding, train=exp.train, data=exp.data,
                   run_dir=str(exp.run_dir), threads=threads)
    return exp, job


def check_run_dir(exp, job, resume: bool) -> None:
    """The run-dir rules (``nas.experiment.load.prepare_run_dir``); --resume continues the same model only."""
    import yaml

    from nas.experiment.load import prepare_run_dir
    from nas.train import checkpoint as ckpt

    run_dir = prepare_run_dir(exp, resume)
    if resume and (run_dir / ckpt.MODEL).is_file():
        record = yaml.safe_load((run_dir / ckpt.MODEL).read_text())
        want = {"genotype": job.genotype, "width": job.width, "depth": job.depth, "resolution": job.resolution,
                "stem_stride": job.stem_stride}
        diff = [k for k, v in want.items() if record.get(k) != v]
        if diff:
            raise ValueError(f"--resume: {str(run_dir)!r} trained another model ({', '.join(diff)} differ: "
                             f"{', '.join(f'{k}={record.get(k)!r}' for k in diff)}); pass the same genotype and scale")


def check_data(job, workers: int) -> None:
    """The data loads, and the batch fits it, before Ray starts (image folders are decoded by the workers only)."""
    from nas.config import ConfigError
    from nas.experiment.load import check_data as load_checked

    data = load_checked(job.data)
    if data is None:
        return
    per_rank, per_worker = len(data.y_train) // workers, job.train.batch_size // workers
    if per_worker > per_rank:
        raise ConfigError(f"train.batch_size: {job.train.batch_size} ({per_worker} per worker) exceeds the "
                          f"{per_rank} training images of each of {workers} workers ({data.name}: "
                          f"{len(data.y_train)} after the hold-out); lower train.batch_size")


def progress_line(m: dict) -> str:
    from nas.progress import duration as _duration

    ema = f" (ema {m['ema_accuracy']:.4f})" if "ema_accuracy" in m else ""
    return (f"epoch {m['epoch']}/{m['epochs']}  loss {m['loss']:.4f}  holdout {m['accuracy']:.4f}{ema}  "
            f"lr {m['lr']:.4g}  {m['images_per_s']:.0f} img/s  {m['epoch_s']:.1f} s  ETA {_duration(m['eta_s'])}")


def run(args: argparse.Namespace) -> int:
    exp, job = build_job(args)
    check_run_dir(exp, job, args.resume)
    check_data(job, exp.workers.count)
    from nas.experiment.load import write_config
    from nas.ray.train import TrainingFailed, fit
    from nas.train import checkpoint as ckpt

    write_config(exp, job=dataclasses.asdict(job))

    def on_epoch(metrics: dict) -> None:
        print(progress_line(metrics), file=sys.stderr, flush=True)

    if not args.quiet and not args.json:
        print(f"training {exp.run_dir} with {exp.workers.count} worker(s): width {job.width:g}, depth "
              f"{job.depth:g}, resolution {job.resolution}, {exp.train.epochs} epochs", file=sys.stderr, flush=True)
    try:
        result = fit(job, exp.workers, exp.output, address=args.address or exp.address,
                     on_epoch=None if args.quiet or args.json else on_epoch)
    except TrainingFailed as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print_json({**result, "run_dir": str(exp.run_dir), "weights_file": str(exp.run_dir / ckpt.WEIGHTS)})
        return 0
    test = result.get("test_ema_accuracy", result.get("test_accuracy"))
    print(f"test accuracy {test:.4f} ({result['weights']} weights)" if test is not None else "no test split")
    print(f"weights: {exp.run_dir / ckpt.WEIGHTS}  (nas export {exp.run_dir} --onnx model.onnx --check)")
    return 0
