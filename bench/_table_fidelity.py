"""``supernet_fidelity.py --truth nas-bench-macro``: the supernet against a converged benchmark table.

Every distinct network of the table (3,969 for NAS-Bench-Macro) is scored by the trained supernet
(inherited weights, BN recalibrated per path) and ranked against the table's mean accuracy over its
recorded trainings, for accuracy and for the MnasNet reward ``ACC * (MACs/T)^w`` (T = the table's
median MACs, w from ``nas.cost.objective.ObjectiveConfig``; the MACs are the table's, of the
full-size network).  Beside it, on the same networks: params alone, MACs alone and their negations
(trivial predictors), the truth's own seed-vs-seed agreement (run 1 vs run 2 of the table), and,
optionally, a second supernet trained with another seed and the standalone proxy on a sample.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nas.stats import kendall, spearman


def precision_at(pred: np.ndarray, truth: np.ndarray, share: float = 0.05) -> float:
    """Share of the predictor's top ``share`` that is in the truth's top ``share``."""
    k = max(1, int(round(share * len(truth))))
    top_pred = set(np.argsort(-pred, kind="stable")[:k].tolist())
    top_true = set(np.argsort(-truth, kind="stable")[:k].tolist())
    return len(top_pred & top_true) / k


def _row(name: str, pred, truth) -> dict:
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    return {"predictor": name, "tau": kendall(pred, truth), "rho": spearman(pred, truth),
            "p@5%": precision_at(pred, truth)}


def _train(exp, seed_offset: int = 0):
    """Train (or reuse, when complete) the supernet of ``exp`` with ``supernet.seed + seed_offset``."""
    from nas.supernet import train_supernet

    if seed_offset:
        exp = replace(exp, supernet=replace(exp.supernet, seed=exp.supernet.seed + seed_offset),
                      output=replace(exp.output, name=f"{exp.output.name}_seed{exp.supernet.seed + seed_offset}"))
    t0 = time.perf_counter()
    summary = train_supernet(exp, resume=exp.checkpoint_path.exists())
    wall = time.perf_counter() - t0
    last = summary.history[-1]
    epochs_s = sum(h["train_s"] + h["eval_s"] for m in (summary.members or [summary]) for h in m.history)
    members = f" x {len(summary.members)} members (seeds {exp.supernet.seed}..)" if summary.members else ""
    print(f"supernet seed {exp.supernet.seed}: {summary.epochs} epochs{members}, {epochs_s:.0f} s of epochs "
          f"({wall:.0f} s wall this run); largest path {last['accuracy_largest']:.3f}, smallest {last['accuracy_smallest']:.3f}",
          flush=True)
    return summary.checkpoint, epochs_s


def _recipe(exp) -> str:
    from dataclasses import fields

    from nas.experiment.supernet import SupernetConfig

    default = SupernetConfig()
    return ", ".join(f"{f.name} {getattr(exp.supernet, f.name)}" for f in fields(SupernetConfig)
                     if getattr(exp.supernet, f.name) != getattr(default, f.name)
                     and f.name not in ("cpus_per_worker", "checkpoint", "workers"))


def _score(checkpoint: str, exp, genotypes) -> tuple[np.ndarray, float]:
    from nas.supernet import SupernetScorer

    scorer = SupernetScorer.from_checkpoint(checkpoint, device=exp.proxy.device,
                                            calib_batches=exp.supernet.calib_batches,
                                            calib_batch_size=exp.supernet.calib_batch_size)
    t0 = time.perf_counter()
    scores = scorer.score_many(genotypes)
    failed = [g.to_string() for g, s in zip(genotypes, scores) if not s.ok]
    if failed:
        raise SystemExit(f"{len(failed)} networks failed to score, e.g. {failed[0]}")
    return np.array([s.accuracy for s in scores]), time.perf_counter() - t0


def _proxy_sample(exp, genotypes, truth_acc, n: int, seed: int) -> dict:
    """The standalone proxy (``proxy`` section) on ``n`` sampled networks: tau against the table."""
    from nas.data import load_data
    from nas.proxy.train import train_proxy

    idx = np.random.default_rng([seed, 48]).choice(len(genotypes), size=min(n, len(genotypes)), replace=False)
    data = load_data(exp.data)
    t0 = time.perf_counter()
    accs = []
    for i in idx:
        out = train_proxy(genotypes[i], exp.proxy, data)
        accs.append(out.accuracy if out.status == "ok" else 0.0)
    secs = time.perf_counter() - t0
    return {"idx": idx, "acc": np.array(accs), "s": secs}


def run(args, exp) -> None:
    from nas.cost.objective import ObjectiveConfig
    from nas.data.tables import load_table

    table = load_table(args.truth)
    rows = list(table.networks())
    if args.table_sample:  # a tiny setting: a seeded sample of the networks
        pick = np.random.default_rng([args.seed, 5]).choice(len(rows), size=min(args.table_sample, len(rows)),
                                                            replace=False)
        rows = [rows[i] for i in sorted(pick)]
    genotypes = [g for g, _ in rows]
    truth_acc = np.array([r.mean for _, r in rows])
    runs = min(len(r.accuracies) for _, r in rows)
    macs = np.array([float(r.macs) for _, r in rows])
    params = np.array([float(r.params) for _, r in rows])
    w = ObjectiveConfig().w
    target = float(np.median(np.array([float(r.macs) for _, r in table.networks()])))
    penalty = (macs / target) ** w
    truth_rew = truth_acc * penalty
    print(f"truth: {table.name}, {len(genotypes)} of {len(table)} distinct networks, mean of {runs} trainings; "
          f"reward = ACC*(MACs/T)^{w:g}, T = median MACs {target / 1e6:.1f}M; space {exp.space}, proxy width "
          f"{exp.proxy.width:g}, {exp.proxy.resolution}px; data {exp.data.kind} {exp.data.path or ''}", flush=True)
    recipe = _recipe(exp)
    print(f"recipe (supernet: settings other than the defaults): {recipe}", flush=True)
    checkpoint, train_s = (args.checkpoint, 0.0) if args.checkpoint else _train(exp)
    sup, score_s = _score(checkpoint, exp, genotypes)
    print(f"scored {len(genotypes)} networks in {score_s:.0f} s ({1000 * score_s / len(genotypes):.0f} ms each)",
          flush=True)
    preds = {"supernet": sup, "MACs": macs, "-MACs": -macs, "params": params, "-params": -params}
    result = {"networks": len(genotypes), "recipe": recipe, "train_s": train_s, "score_s": score_s, "acc": [], "reward": []}
    for kind, truth in (("acc", truth_acc), ("reward", truth_rew)):
        for name, p in preds.items():
            # the supernet's reward: its accuracy with the same MACs penalty; a count predicts either alone
            result[kind].append(_row(name, p * penalty if (kind == "reward" and name == "supernet") else p, truth))
        if runs >= 2:
            s1 = np.array([r.accuracies[0] for _, r in rows])
            s2 = np.array([r.accuracies[1] for _, r in rows])
            f = penalty if kind == "reward" else 1.0
            result[kind].append(_row("truth run 1 vs run 2 (ceiling)", s1 * f, s2 * f))
    if args.second_seed:
        ck2, train2 = _train(exp, seed_offset=exp.supernet.ensemble)  # disjoint seeds from the first one's members
        sup2, _ = _score(ck2, exp, genotypes)
        result["train2_s"] = train2
        result["acc"].append(_row("supernet seed 2", sup2, truth_acc))
        result["reward"].append(_row("supernet seed 2", sup2 * penalty, truth_rew))
        result["seed_vs_seed"] = {"acc_tau": kendall(sup, sup2), "reward_tau": kendall(sup * penalty, sup2 * penalty)}
    if args.proxy_sample:
        px = _proxy_sample(exp, genotypes, truth_acc, args.proxy_sample, args.seed)
        i = px["idx"]
        result["proxy"] = {"n": len(i), "s": px["s"],
                           "acc": _row("proxy", px["acc"], truth_acc[i]),
                           "reward": _row("proxy", px["acc"] * penalty[i], truth_rew[i]),
                           "supernet_acc": _row("supernet", sup[i], truth_acc[i]),
                           "supernet_reward": _row("supernet", sup[i] * penalty[i], truth_rew[i])}
    _print(result, exp)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")


def _print(result: dict, exp) -> None:
    n = result["networks"]
    print(f"\nrank correlation with the table's mean accuracy over {n} networks (precision@5%: share of the "
          f"predictor's top 5% in the truth's top 5%):")
    print(f"  {'predictor':<34}{'acc tau':>9}{'rho':>8}{'p@5%':>7}   {'reward tau':>10}{'rho':>8}{'p@5%':>7}")
    for a, r in zip(result["acc"], result["reward"]):
        print(f"  {a['predictor']:<34}{a['tau']:>+9.3f}{a['rho']:>+8.3f}{a['p@5%']:>7.2f}   "
              f"{r['tau']:>+10.3f}{r['rho']:>+8.3f}{r['p@5%']:>7.2f}")
    if "seed_vs_seed" in result:
        s = result["seed_vs_seed"]
        print(f"  supernet seed 1 vs seed 2 (each other): acc tau {s['acc_tau']:+.3f}, reward tau {s['reward_tau']:+.3f}")
    if "proxy" in result:
        p = result["proxy"]
        print(f"  on a sample of {p['n']} networks: standalone proxy ({exp.proxy.epochs} epochs, {p['s']:.0f} s) acc "
              f"tau {p['acc']['tau']:+.3f}, reward tau {p['reward']['tau']:+.3f}; supernet on the same: acc tau "
              f"{p['supernet_acc']['tau']:+.3f}, reward tau {p['supernet_reward']['tau']:+.3f}")
    best = max(r["tau"] for r in result["reward"][1:5])
    sup = result["reward"][0]["tau"]
    print(f"supernet reward tau {sup:+.3f} vs best trivial predictor {best:+.3f} (ratio "
          f"{sup / best if best > 0 else float('nan'):.2f}); supernet {result['train_s']:.0f} s of training, "
          f"scoring {result['score_s']:.0f} s")
