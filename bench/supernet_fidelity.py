"""Does the supernet rank architectures like standalone training does?  Kendall's tau and Spearman's rho.

Scores N genotypes (default 24: b0, mnasnet-a1 and random ones of the space) with a trained
supernet (inherited weights, BN recalibrated per path) and trains the same genotypes standalone
with the proxy trainer (``nas.proxy.train_proxy``, the experiment's ``proxy`` section), then
prints Kendall's tau and Spearman's rho between the two held-out accuracies.  The peer, on the
same genotypes: the proxy network's multiply-adds alone as the predictor.

The supernet is trained first (its run dir is ``output.dir``/``output.name``; an existing
checkpoint there is continued, or reused when complete) unless ``--checkpoint`` names one.

    # CPU, the quickstart size (about 8-10 minutes on a 2-core machine):
    OMP_NUM_THREADS=1 .venv/bin/python bench/supernet_fidelity.py --workers 2
    # ... plus the noise ceiling: a second standalone seed per genotype, seed 1 vs seed 2 (2x the standalone cost)
    OMP_NUM_THREADS=1 .venv/bin/python bench/supernet_fidelity.py --workers 2 --noise-ceiling --json truth.json
    # another supernet against the same standalone trainings (seconds: nothing is trained standalone again)
    OMP_NUM_THREADS=1 .venv/bin/python bench/supernet_fidelity.py --checkpoint runs/x/supernet.pt --truth truth.json
    # against the converged NAS-Bench-Macro table: all 3,969 networks, the reward too (bench/_table_fidelity.py)
    OMP_NUM_THREADS=1 .venv/bin/python bench/supernet_fidelity.py --truth nas-bench-macro [--second-seed] [--proxy-sample 48]
    # GPU, cifar10_small (bench/gpu_checks.sh fidelity):
    .venv/bin/python bench/supernet_fidelity.py --config experiments/supernet_gpu.yaml --data data/cifar10_small.npz --workers 4
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _data import ROOT, npz_overrides

from nas.stats import kendall, spearman


def genotypes_of(space, n: int, seed: int) -> list:
    import dataclasses

    from search_spaces import DEFAULT_FRAME, load_space, named_genotype

    space = load_space(space)  # a name, or the experiment's declaration
    # mnasnet-a1 in the space's frame (TF's fixed 1280 head differs only below width 1.0; the supernet shares one)
    a1 = named_genotype("mnasnet-a1")
    named = [named_genotype("b0"), a1.with_frame(**dataclasses.asdict(DEFAULT_FRAME))] if space.name == "mnasnet" else []
    rng = np.random.default_rng(seed)
    out = list(named)
    while len(out) < n:
        g = space.sample(rng)
        if g not in out:
            out.append(g)
    return out[:n]


def _own_run_dir(exp, overrides: list[str]):
    """A run dir per recipe: ``--set`` settings (other than output and device) name it, so a run with another
    seed or setting never meets the checkpoint of this config's plain run."""
    from dataclasses import replace

    recipe = [o for o in overrides if not o.startswith(("output.", "proxy.device="))]
    if not recipe or any(o.startswith("output.name=") for o in overrides):
        return exp
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "_", "+".join(o.removeprefix("supernet.") for o in recipe))
    return replace(exp, output=replace(exp.output, name=f"{exp.output.name}-{slug[:80]}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None,
                        help="default experiments/supernet_quick.yaml (supernet_macro_16px.yaml with a table --truth)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="e.g. supernet.epochs=10")
    parser.add_argument("--data", default=None, help="an npz dataset (default: the config's data)")
    parser.add_argument("--device", default=None, help="proxy.device override (auto, cpu, cuda)")
    parser.add_argument("--genotypes", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random genotypes")
    parser.add_argument("--workers", type=int, default=1, help="processes training the standalone genotypes")
    parser.add_argument("--standalone-seeds", type=int, default=1,
                        help="train each genotype with this many seeds and average (less noisy ground truth)")
    parser.add_argument("--noise-ceiling", action="store_true",
                        help="train every genotype with 2 seeds (at least) and print how well seed 1 ranks like "
                             "seed 2: the ground truth's agreement with itself (doubles the standalone cost)")
    parser.add_argument("--checkpoint", default=None, help="score with this supernet instead of training one")
    parser.add_argument("--json", default=None, help="also write the rows and statistics to this file")
    parser.add_argument("--truth", default=None,
                        help="a benchmark table (nas-bench-macro, or a table file): score every distinct network "
                             "against its converged accuracy (default config experiments/supernet_macro_16px.yaml); or "
                             "an earlier run's --json: reuse its standalone trainings (same genotypes, proxy, data)")
    parser.add_argument("--table-sample", type=int, default=0,
                        help="with a table truth: score only this many seeded networks (0: all; a smoke setting)")
    parser.add_argument("--second-seed", action="store_true",
                        help="with a table truth: also train a supernet with seed+1; print tau between the two")
    parser.add_argument("--proxy-sample", type=int, default=0,
                        help="with a table truth: also train this many networks standalone (the proxy section) "
                             "and rank them against the table (e.g. 48; slow)")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.noise_ceiling:
        args.standalone_seeds = max(2, args.standalone_seeds)

    import torch

    from nas.supernet import SupernetScorer, load_supernet_experiment, train_supernet

    overrides = npz_overrides(args.data) + ([f"proxy.device={args.device}"] if args.device else []) + args.overrides
    table = args.truth is not None and is_table(args.truth)
    if args.config is None:
        args.config = str(ROOT / "experiments" / ("supernet_macro_16px.yaml" if table else "supernet_quick.yaml"))
    exp = load_supernet_experiment(args.config, overrides)
    exp = _own_run_dir(exp, args.overrides)
    if table:
        import _table_fidelity

        _table_fidelity.run(args, exp)
        return
    genotypes = genotypes_of(exp.space, args.genotypes, args.seed)
    if args.worker_index is not None:
        torch.set_num_threads(1) if exp.proxy.device == "cpu" else None
        standalone(exp, genotypes, args)
        return

    print(f"{len(genotypes)} genotypes of {exp.search_space.name} (b0, mnasnet-a1, random seed {args.seed}); proxy width "
          f"{exp.proxy.width:g}, depth {exp.proxy.depth:g}, {exp.proxy.resolution}px, {exp.proxy.epochs} epochs "
          f"standalone x {args.standalone_seeds} seed(s); data {exp.data.kind} {exp.data.path or ''}", flush=True)
    truth = reused_truth(args.truth, genotypes, exp) if args.truth else None
    # the standalone trainings run in other processes while this one trains the supernet
    procs = [] if truth is not None else [
        subprocess.Popen([sys.executable, __file__, *sys.argv[1:], "--worker-index", str(k)],
                         stdout=subprocess.PIPE, text=True, cwd=ROOT) for k in range(args.workers)]
    t0 = time.perf_counter()
    checkpoint = args.checkpoint
    train_s = 0.0
    if checkpoint is None:
        summary = train_supernet(exp, resume=exp.checkpoint_path.exists())
        checkpoint = summary.checkpoint
        train_s = sum(h["train_s"] + h["eval_s"] for h in summary.history)
        last = summary.history[-1]
        print(f"supernet: {summary.epochs} epochs in {time.perf_counter() - t0:.0f} s wall ({train_s:.0f} s of "
              f"epochs); largest path {last['accuracy_largest']:.3f}, smallest {last['accuracy_smallest']:.3f}",
              flush=True)
    # calibration as this run's supernet section says (--set supernet.calib_batches=... tries other ones)
    evaluator = SupernetScorer.from_checkpoint(checkpoint, device=exp.proxy.device,
                                                  calib_batches=exp.supernet.calib_batches,
                                                  calib_batch_size=exp.supernet.calib_batch_size)
    t1 = time.perf_counter()
    scores = evaluator.score_many(genotypes)
    score_s = time.perf_counter() - t1
    rows = dict(truth or {})
    for k, p in enumerate(procs):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"standalone worker {k} failed with exit code {p.returncode}")
        for line in out.splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                rows[row["index"]] = row
    wall = time.perf_counter() - t0
    report(genotypes, scores, rows, score_s, wall, args, exp)


def is_table(truth: str) -> bool:
    """A shipped table's name, a table CSV or an effnas-table JSON (not an earlier run's ``--json``)."""
    from nas.data.tables import SHIPPED

    if truth in SHIPPED or truth.lower().endswith(".csv"):
        return True
    try:
        return "format" in json.loads(Path(truth).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False


def reused_truth(path: str, genotypes, exp) -> dict:
    """The standalone rows of an earlier ``--json``, after checking they are of the same question."""
    from dataclasses import asdict

    saved = json.loads(Path(path).read_text(encoding="utf-8"))
    rows = {r["index"]: r for r in saved["rows"]}
    if [rows[i]["genotype"] if i in rows else None for i in range(len(genotypes))] != [g.to_string() for g in genotypes]:
        raise SystemExit(f"--truth {path}: its genotypes are not this run's (--genotypes/--seed differ)")
    for name, now in (("proxy", asdict(exp.proxy)), ("data", asdict(exp.data))):
        if saved.get(name) != json.loads(json.dumps(now)):
            raise SystemExit(f"--truth {path}: trained with another {name} section than this run's")
    return rows


def standalone(exp, genotypes, args) -> None:
    """This worker's share of the standalone trainings: JSON lines on stdout."""
    from dataclasses import replace

    from nas.data import load_data
    from nas.proxy.train import train_proxy

    data = load_data(exp.data)
    for i in range(args.worker_index, len(genotypes), args.workers):
        accs, secs, status = [], 0.0, "ok"
        for s in range(args.standalone_seeds):
            out = train_proxy(genotypes[i], replace(exp.proxy, seed=exp.proxy.seed + s), data)
            if out.status != "ok":
                status = f"failed: {out.reason}"
                break
            accs.append(out.accuracy)
            secs += out.train_s + out.eval_s
        print(json.dumps({"index": i, "standalone": float(np.mean(accs)) if accs else 0.0, "seeds": accs,
                          "standalone_s": secs, "proxy_macs": out.proxy_macs, "status": status}), flush=True)


def report(genotypes, scores, rows, score_s, wall, args, exp) -> None:
    table = []
    for i, (g, s) in enumerate(zip(genotypes, scores)):
        r = rows[i]
        table.append({"index": i, "genotype": g.to_string(), "supernet": s.accuracy, "supernet_ok": s.ok,
                      **{k: r[k] for k in ("standalone", "seeds", "standalone_s", "proxy_macs", "status")}})
    print(f"\n{'#':>3}  {'proxy MACs':>10}  {'supernet':>8}  {'standalone':>10}  genotype")
    for t in sorted(table, key=lambda t: -t["standalone"]):
        name = {0: "b0", 1: "mnasnet-a1"}.get(t["index"], "") if args.seed is not None else ""
        print(f"{t['index']:>3}  {t['proxy_macs'] / 1e6:9.3f}M  {t['supernet']:8.4f}  {t['standalone']:10.4f}  "
              f"{name or t['genotype'][:60]}")
    ok = [t for t in table if t["supernet_ok"] and t["status"] == "ok"]
    if len(ok) < 3:
        raise SystemExit(f"only {len(ok)} genotypes scored and trained; cannot rank")
    truth = [t["standalone"] for t in ok]
    stats = {"n": len(ok),
             "supernet_tau": kendall([t["supernet"] for t in ok], truth),
             "supernet_rho": spearman([t["supernet"] for t in ok], truth),
             "macs_tau": kendall([t["proxy_macs"] for t in ok], truth),
             "macs_rho": spearman([t["proxy_macs"] for t in ok], truth),
             "supernet_vs_macs_tau": kendall([t["supernet"] for t in ok], [t["proxy_macs"] for t in ok]),
             "score_s_per_genotype": score_s / len(genotypes),
             "standalone_s_per_genotype": float(np.mean([t["standalone_s"] for t in ok])),
             "wall_s": wall}
    n_seeds = min(len(t["seeds"]) for t in ok)
    seeds = np.array([t["seeds"][:n_seeds] for t in ok])
    if n_seeds > 1:  # how well one standalone seed predicts the other: the truth's own noise
        stats["seed_vs_seed_tau"] = kendall(seeds[:, 0], seeds[:, 1])
        stats["seed_vs_seed_rho"] = spearman(seeds[:, 0], seeds[:, 1])
        # like for like with the ceiling: each predictor against ONE standalone seed
        for name, pred in (("supernet", [t["supernet"] for t in ok]), ("macs", [t["proxy_macs"] for t in ok])):
            for k in (1, 2):
                stats[f"{name}_tau_seed{k}"] = kendall(pred, seeds[:, k - 1])
                stats[f"{name}_rho_seed{k}"] = spearman(pred, seeds[:, k - 1])
    truth_name = f"the mean of {n_seeds} seeds" if n_seeds > 1 else "one seed"
    print(f"\nrank correlation with standalone training ({len(ok)} genotypes; truth: {truth_name}):")
    print(f"  {'':<34}{'Kendall tau':>12}{'Spearman rho':>14}")
    print(f"  {'supernet':<34}{stats['supernet_tau']:>+12.3f}{stats['supernet_rho']:>+14.3f}")
    print(f"  {'MACs alone (peer)':<34}{stats['macs_tau']:>+12.3f}{stats['macs_rho']:>+14.3f}")
    if "seed_vs_seed_tau" in stats:
        for k in (1, 2):
            print(f"  against standalone seed {k} alone:")
            print(f"  {'  supernet':<34}{stats[f'supernet_tau_seed{k}']:>+12.3f}"
                  f"{stats[f'supernet_rho_seed{k}']:>+14.3f}")
            print(f"  {'  MACs alone (peer)':<34}{stats[f'macs_tau_seed{k}']:>+12.3f}{stats[f'macs_rho_seed{k}']:>+14.3f}")
        print(f"  {'standalone seed 1 (noise ceiling)':<34}{stats['seed_vs_seed_tau']:>+12.3f}"
              f"{stats['seed_vs_seed_rho']:>+14.3f}   (the truth ranking like itself)")
    else:
        print("  (--noise-ceiling: also train a second seed and print the ground truth's own agreement)")
    n = stats["n"]  # Kendall's tau of unrelated rankings has this standard deviation: differences below it are noise
    print(f"  (tau of two unrelated rankings of {n}: standard deviation {np.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))):.3f})")
    print(f"  supernet minus peer: tau {stats['supernet_tau'] - stats['macs_tau']:+.3f}; supernet vs MACs tau "
          f"{stats['supernet_vs_macs_tau']:+.3f}")
    print(f"cost: {1000 * stats['score_s_per_genotype']:.0f} ms a genotype with the supernet vs "
          f"{stats['standalone_s_per_genotype']:.1f} s standalone ({stats['standalone_s_per_genotype'] / max(stats['score_s_per_genotype'], 1e-9):.0f}x); "
          f"{wall:.0f} s wall in all")
    if args.json:
        from dataclasses import asdict

        Path(args.json).write_text(json.dumps({"rows": table, "stats": stats, "proxy": asdict(exp.proxy),
                                               "data": asdict(exp.data)}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
