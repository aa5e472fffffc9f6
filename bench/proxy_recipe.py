"""Proxy recipes against a time budget: held-out accuracy of one genotype after N seconds of training.

Each variant (a name and ``--set``-style overrides of the proxy/data sections)
runs in its own fresh process, so cudnn's autotuning cache starts empty as it
does for a genotype a worker has not seen.  In that process a 1-epoch warm-up
trial of the same genotype with autotuning off pays CUDA initialisation and
kernel loading first (what a long-lived search worker has already paid); then
the timed trial runs.  Printed per variant: seconds of training per epoch (the
first epoch includes autotuning when it is on), held-out accuracy per epoch,
total training seconds, and the training seconds at which accuracy first
reached ``--goal``.  The peer is the first variant: every other variant's
training time is printed as a ratio to it.

    python bench/proxy_recipe.py --data data/cifar10_small.npz \\
        --variant e8=proxy.epochs=8,proxy.warmup_epochs=2 \\
        --variant e12-autotune=proxy.epochs=12,proxy.cudnn_benchmark=true,proxy.eval_batch_size=256

On a CPU add ``--device cpu`` and a small setting (for example
``proxy.width=0.25,proxy.stem_stride=2,data.train_limit=1000``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

from _data import ROOT, default_data, npz_overrides


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, sep, sets = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: expected NAME=key=value[,key=value...]")
    return name, [s for s in sets.split(",") if s]


def worker(args) -> None:
    from nas.experiment.trial import load_trial_config
    from nas.evaluators.proxy import run_trial
    from search_spaces import resolve_genotype

    overrides = [f"proxy.device={args.device}", *npz_overrides(args.data)]
    cfg = load_trial_config(None, overrides + args.sets)
    genotype = resolve_genotype(args.genotype)
    warm = replace(cfg.proxy, epochs=1, cudnn_benchmark=False)
    run_trial(genotype, warm, cfg.data, cfg.objective, cfg.target)
    start = time.perf_counter()
    result = run_trial(genotype, cfg.proxy, cfg.data, cfg.objective, cfg.target)
    wall = time.perf_counter() - start
    print(json.dumps({"status": result.status, "reason": result.reason, "wall_s": wall,
                      "history": [{k: h[k] for k in ("epoch", "accuracy", "train_s", "eval_s", "images_per_s")}
                                  for h in result.history]}))


def report(name: str, run: dict, goal: float, peer_train: float | None) -> float:
    hist = run["history"]
    train = sum(h["train_s"] for h in hist)
    elapsed, reached = 0.0, None
    for h in hist:
        elapsed += h["train_s"]
        if reached is None and h["accuracy"] >= goal:
            reached = (h["epoch"], elapsed)
    epochs = "  ".join(f"{h['epoch']}:{h['accuracy']:.3f}/{h['train_s']:.2f}s" for h in hist)
    print(f"[{name}] epoch:accuracy/training seconds  {epochs}")
    steady = [h["images_per_s"] for h in hist[1:]] or [hist[0]["images_per_s"]]
    ratio = f", {train / peer_train:.2f}x the first variant's training time" if peer_train else ""
    hit = f"reached {goal:.2f} at epoch {reached[0]} after {reached[1]:.1f} s of training" if reached \
        else f"never reached {goal:.2f}"
    print(f"[{name}] {run['status']} {run['reason']}: final accuracy {hist[-1]['accuracy']:.4f}; training "
          f"{train:.1f} s (first epoch {hist[0]['train_s']:.2f} s, later epochs "
          f"{sorted(steady)[len(steady) // 2]:.0f} images/s), evaluation {sum(h['eval_s'] for h in hist):.1f} s, "
          f"trial wall {run['wall_s']:.1f} s{ratio}; {hit}", flush=True)
    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", dest="variants", type=parse_variant, action="append", default=[],
                        help="NAME=key=value[,key=value...] (repeatable; the first is the peer)")
    parser.add_argument("--genotype", default="b0")
    parser.add_argument("--data", default=default_data(),
                        help="npz file, 2,000 images held out (default: cifar10_small.npz if found, else builtin)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--goal", type=float, default=0.6, help="accuracy whose training time is reported")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sets", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    variants = args.variants or [("default", [])]
    print(f"genotype {args.genotype}, data {args.data or 'builtin'}, device {args.device}; one fresh process "
          f"per variant", flush=True)
    peer = None
    for name, sets in variants:
        cmd = [sys.executable, __file__, "--worker", "--genotype", args.genotype, "--device", args.device] \
            + (["--data", args.data] if args.data else []) + [f"--sets={s}" for s in sets]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            print(f"[{name}] worker failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}",
                  flush=True)
            continue
        train = report(name, json.loads(proc.stdout.strip().splitlines()[-1]), args.goal, peer)
        peer = peer or train


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
