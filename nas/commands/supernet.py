"""``nas supernet train CONFIG`` and ``nas supernet eval CHECKPOINT GENOTYPE...``: one-shot evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_run_options, positive_int, print_json, print_table



def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("One-shot evaluation: train one supernet of the search space on your data "
                     "(Ray Train with --workers > 1), then score any genotype in milliseconds "
                     "(inherited weights, BatchNorm recalibrated per path).")
    inner = p.add_subparsers(dest="supernet_command", required=True)
    t = inner.add_parser("train", help="train (or continue) a supernet",
                         description="Train the supernet an experiment YAML describes (sections space, data, proxy, "
                                     "supernet, output).  The checkpoint <output.dir>/<output.name>/supernet.pt is "
                                     "written after every epoch; --resume continues from the last one.")
    t.add_argument("config", metavar="CONFIG", help="supernet YAML, or with --resume a run dir")
    add_run_options(t, "supernet.epochs=5", ray=False)
    t.add_argument("--workers", type=positive_int, default=None,
                   help="data-parallel Ray Train workers (default supernet.workers; 1 = no Ray)")
    t.add_argument("--resume", action="store_true", help="continue from the run dir's last checkpoint")
    t.set_defaults(func=run_train)
    e = inner.add_parser("eval", help="held-out accuracy of genotypes with a trained supernet",
                         description="Score genotypes with a supernet checkpoint: BN recalibrated on fixed training "
                                     "batches, then held-out accuracy of the path.")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="a supernet.pt (or the run dir holding it)")
    e.add_argument("genotypes", metavar="GENOTYPE", nargs="+",
                   help="named genotypes (b0, mnasnet-a1), TF block strings or timm arch strings")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    e.add_argument("--calib-batches", type=positive_int, default=None,
                   help="calibration batches (default: the checkpoint's supernet.calib_batches)")
    e.add_argument("--json", action="store_true", help="print a JSON list: genotype, accuracy, status, ...")
    e.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from nas.experiment.load import check_data, load_run, prepare_run_dir, write_config
    from nas.experiment.supernet import SupernetExperiment
    from nas.evaluators.proxy import check_device

    exp = load_run(SupernetExperiment, args.config, args.overrides, args.resume)  # every config mistake stops here
    workers = args.workers or exp.supernet.workers
    if exp.supernet.batch_size % workers:
        raise ValueError(f"supernet.batch_size={exp.supernet.batch_size} must be divisible by --workers {workers}; "
                         f"e.g. --set supernet.batch_size={exp.supernet.batch_size // workers * workers or workers}")
    if args.workers:
        exp = dataclasses.replace(exp, supernet=dataclasses.replace(exp.supernet, workers=workers))
    prepare_run_dir(exp, args.resume)
    if args.resume:
        from nas.supernet.train import check_resume_recipe

        check_resume_recipe(exp)  # another recipe or seed never continues a checkpoint
    check_device(exp.proxy.device, "proxy.device", exp.ray.address if workers > 1 else None)
    if workers > 1 and exp.ray.address:
        from nas.cluster import check_address

        check_address(exp.ray.address, exp.ray.connect_timeout_s)
    check_data(exp.data)  # the last check: it logs what it read
    write_config(exp)
    print(f"supernet: space {exp.search_space.name}, {exp.supernet.epochs} epochs, {exp.supernet.paths_per_step} paths a step, "
          f"{workers} worker(s) -> {exp.checkpoint_path}  (TensorBoard: tensorboard --logdir {exp.run_dir})",
          flush=True)
    if workers > 1:
        from nas.ray.supernet import train_distributed

        summary = train_distributed(exp, workers=workers, resume=args.resume, progress=print, on_epoch=_progress)
    else:
        import torch

        from nas.supernet.train import train_supernet

        torch.set_num_threads(max(1, int(exp.supernet.cpus_per_worker)))
        summary = train_supernet(exp, resume=args.resume, report=_progress, on_step=_step)
    if summary.history:
        last = summary.history[-1]
        print(f"done: {summary.epochs} epochs; held-out accuracy after BN recalibration: largest path "
              f"{last['accuracy_largest']:.4f}, smallest {last['accuracy_smallest']:.4f}\ncheckpoint: "
              f"{summary.checkpoint}\n" + "\n".join(next_steps(exp.search_space.name, summary.checkpoint)))
    return 0


#: The shipped search experiment that searches with a supernet of each space (``next_steps``).
SEARCH_WITH = {"nas-bench-macro": "experiments/quickstart.yaml", "mnasnet": "experiments/quickstart_mnasnet.yaml"}


def next_steps(space: str, checkpoint) -> list[str]:
    """What to run with a freshly trained supernet of ``space``: score genotypes, search with it."""
    examples = "b0 mnasnet-a1" if space == "mnasnet" else f"GENOTYPE  (a genotype string of space {space})"
    search = SEARCH_WITH.get(space, f"YOUR_EXPERIMENT.yaml  (space: {space}, evaluator.kind: supernet)")
    return [f"score genotypes: nas supernet eval {checkpoint} {examples}",
            f"search with it: nas search {search} --set evaluator.checkpoint={checkpoint}"]


def _progress(m: dict) -> None:
    from nas.progress import duration

    member = f"member {m['member'] + 1}/{m['members']}  " if m.get("members", 1) > 1 else ""
    print(f"{member}epoch {m['epoch']:>3}/{m.get('epochs', '?')}  loss {m['loss']:.4f}  largest {m['accuracy_largest']:.4f}  "
          f"smallest {m['accuracy_smallest']:.4f}  {m['path_images_per_s']:.0f} path-images/s  "
          f"{m['train_s'] + m['eval_s']:.1f} s  ETA {duration(m.get('eta_s'))}", flush=True)


def _step(m: dict) -> None:
    print(f"  epoch {m['epoch']}/{m['epochs']}: step {m['step']}/{m['steps']}, {m['images_per_s']:.0f} img/s",
          flush=True)


def run_eval(args: argparse.Namespace) -> int:
    from nas.supernet.checkpoint import check_shapes, read_checkpoint
    from search_spaces import resolve_genotype

    genotypes = [resolve_genotype(text) for text in args.genotypes]  # a malformed string stops here
    path = Path(args.checkpoint)
    if path.is_dir() and (path / "supernet.pt").exists():
        path = path / "supernet.pt"
    payload = read_checkpoint(path)
    meta = payload["meta"]
    shape = check_shapes(payload, path)
    space = meta["space"].get("name") if isinstance(meta["space"], dict) else meta["space"]  # a declaration: its name
    for text, genotype in zip(args.genotypes, genotypes):
        try:
            shape.validate(genotype)
        except ValueError as err:
            raise ValueError(f"genotype {text!r} is not a path of the supernet ({space!r} space): {err}") from None

    from nas.supernet.ensemble import check_members
    from nas.supernet.evaluate import SupernetScorer

    check_members(path, meta)  # an ensemble's members, before the data is loaded

    evaluator = SupernetScorer.from_checkpoint(path, calib_batches=args.calib_batches, device=args.device)
    scores = evaluator.score_many(genotypes)
    rows = [{"genotype": g.to_string(), "accuracy": s.accuracy, "status": s.status, "reason": s.reason, **s.info}
            for g, s in zip(genotypes, scores)]
    if args.json:
        print_json(rows)
    else:
        print_table([{"genotype": text, "accuracy": round(r["accuracy"], 4), "status": r["status"],
                      "ms": round(1000 * (r.get("calib_s", 0) + r.get("eval_s", 0)), 1)}
                     for text, r in zip(args.genotypes, rows)], ["genotype", "accuracy", "status", "ms"])
        for r in rows:
            if r["status"] != "ok":
                print(f"failed: {r['genotype']}: {r['reason']}", file=sys.stderr)
    return 0 if all(s.ok for s in scores) else 1
