"""Does the proxy rank architectures like longer training does?  Spearman rank correlation.

Trains N random genotypes of the MnasNet space (default 12) with the proxy
recipe and with a recipe ``--factor`` times longer (epochs and warm-up scaled,
everything else equal), then prints Spearman's rho between the two held-out
accuracies (goal >= 0.6).  The peer, measured on the same genotypes: the rank
correlation of the proxy network's multiply-adds with the long accuracy -- the
signal a search would get for free from model size alone.

Meant for the GPU machine (default recipe, cifar10_small).  ``--quick`` is a CPU
setting (2,000 images of cifar10_small, 2,000 held out; width 0.25, depth 0.5,
stride-2 stem, 3 vs 12 epochs); about 12 minutes on one core (on a shared machine
OMP_NUM_THREADS=1 is much faster than 2).

    .venv/bin/python bench/proxy_quality.py                     # GPU
    .venv/bin/python bench/proxy_quality.py --workers 4         # 4 processes share the GPU
    OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_quality.py --quick --device cpu
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from _data import ROOT, default_data, npz_overrides

from nas.stats import spearman


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genotypes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0, help="seed of the genotype sample")
    parser.add_argument("--space", default="mnasnet")
    parser.add_argument("--factor", type=float, default=4.0, help="the long recipe trains this many times longer")
    parser.add_argument("--config", default=None, help="YAML with data/proxy sections (default: GPU recipe)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="e.g. proxy.epochs=5")
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="CPU-sized setting (see the docstring)")
    parser.add_argument("--workers", type=int, default=1,
                        help="train the genotypes in this many processes at once (trials packed on one GPU)")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from nas.experiment.trial import load_trial_config
    from search_spaces import load_space

    overrides = [f"proxy.device={args.device}", *(npz_overrides(args.data) if not args.config else [])]
    if args.quick:
        overrides += ["proxy.width=0.25", "proxy.depth=0.5", "proxy.stem_stride=2", "proxy.epochs=3",
                      "proxy.batch_size=64", "proxy.lr=0.1", "proxy.warmup_epochs=0.5",
                      f"data.train_limit={2000 if args.data else 1000}"]
    cfg = load_trial_config(args.config, overrides + args.overrides)
    short = cfg.proxy
    long = replace(short, epochs=round(short.epochs * args.factor), warmup_epochs=short.warmup_epochs * args.factor)
    space = load_space(args.space)  # a shipped name or a YAML declaration file
    rng = np.random.default_rng(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.genotypes)]
    if args.worker_index is not None:
        for i in range(args.worker_index, len(genotypes), args.workers):
            print(json.dumps(train_pair(i, genotypes[i], short, long, cfg)), flush=True)
        return
    print(f"{len(genotypes)} random {args.space} genotypes; proxy {short.epochs} epochs vs {long.epochs} epochs "
          f"(width {short.width:g}, stem stride {short.stem_stride}, data {cfg.data.kind} {cfg.data.path or ''}, "
          f"{args.workers} process(es))", flush=True)
    start = time.perf_counter()
    if args.workers > 1:
        rows = run_workers(args)
    else:
        rows = [train_pair(i, g, short, long, cfg) for i, g in enumerate(genotypes)]
    for row in rows:
        print(f"{row['index'] + 1:>3}  proxy MACs {row['proxy_macs'] / 1e6:7.2f}M  short {row['short']:.3f} "
              f"({row['short_s']:5.1f} s)  long {row['long']:.3f} ({row['long_s']:6.1f} s)  {row['status']}")
    ok = [r for r in rows if r["status"] == "ok/ok"]
    if len(ok) < 3:
        raise SystemExit(f"only {len(ok)} genotypes trained without failure; cannot rank")
    rho = spearman([r["short"] for r in ok], [r["long"] for r in ok])
    peer = spearman([r["proxy_macs"] for r in ok], [r["long"] for r in ok])
    print(f"Spearman rho, proxy accuracy vs {args.factor:g}x longer training: {rho:.3f} (goal >= 0.6; "
          f"{len(ok)} genotypes, {time.perf_counter() - start:.0f} s)")
    print(f"peer, proxy MACs vs {args.factor:g}x longer training: {peer:.3f}; proxy minus peer: {rho - peer:+.3f}")


def train_pair(index: int, genotype, short, long, cfg) -> dict:
    """Train one genotype with the short and the long recipe; the numbers the report needs."""
    from nas.evaluators.proxy import run_trial

    a = run_trial(genotype, short, cfg.data, cfg.objective, cfg.target)
    b = run_trial(genotype, long, cfg.data, cfg.objective, cfg.target)
    reason = a.reason or b.reason
    return {"index": index, "genotype": str(genotype), "proxy_macs": a.proxy_macs, "short": a.accuracy,
            "short_s": a.wall_s, "long": b.accuracy, "long_s": b.wall_s,
            "status": f"{a.status}/{b.status}" + (f" {reason}" if reason else "")}


def run_workers(args) -> list[dict]:
    """The same command in ``--workers`` processes, each taking every n-th genotype; rows by index."""
    argv = [a for a in sys.argv[1:]]
    procs = [subprocess.Popen([sys.executable, __file__, *argv, "--worker-index", str(k)], stdout=subprocess.PIPE,
                              text=True, cwd=ROOT) for k in range(args.workers)]
    rows = []
    for k, p in enumerate(procs):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker {k} failed with exit code {p.returncode}")
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return sorted(rows, key=lambda r: r["index"])


if __name__ == "__main__":
    main()
