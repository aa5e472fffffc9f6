"""Does the quickstart's search beat random on the converged truth?  Many seeds instead of one coin flip.

    OMP_NUM_THREADS=1 python bench/discovery.py [--checkpoint runs/S/supernet.pt] [--seeds 50]
        [--controllers random,evolution,rl,bayes] [--experiment experiments/quickstart.yaml]
        [--supernet experiments/supernet_macro.yaml] [--supernet-set supernet.seed=1] [--scores FILE]
        [--json FILE] [--workers 1] [--check-run RUN_DIR]

1. The supernet of ``--supernet`` (the one ``make search`` trains) is trained, or taken from
   ``--checkpoint``; it scores EVERY distinct network of the nas-bench-macro space once, prefix-shared
   (``nas.supernet.prefix``: the same numbers as scoring one path at a time, i.e. what the quickstart's
   evaluator says of each candidate), turned into the search reward by the experiment's objective and
   target (``nas.evaluators.outcome.Scoring``).  ``--scores FILE`` keeps those scores for the next run.
2. For each seed, each controller (built as ``nas search`` builds it: ``build_controller`` with the
   experiment's objective, constraint and ``budget.samples`` as its budget hint, the controller's
   DEFAULT settings, plus the experiment's own controller with its settings) runs its budget of samples
   in batches of ``evaluator.batch`` (asked together, then told, as the session pumps them); one sample
   = one lookup of that supernet reward.  The equal-budget random baseline runs with the same seed (the
   session's baseline).  The row ``random`` is ANOTHER random search (seed + 10,000): the null, what a
   search no better than random shows here.
3. Every arm is judged on the converged truth (NAS-Bench-Macro, ``nas.search.truth``), by the report's
   own pick rules (``nas.search.truth.picks``): ``returned`` = best by search score; ``verified`` = best
   in truth of the top ``verify.top_k`` by search score; ``found`` = best visited (a perfect evaluator).

Printed per controller and pick rule: median true rank / percentile / regret over the seeds, the
share of seeds where the controller's pick beat the baseline's pick (ties apart), and the ratio of
its median regret to the random baseline's (same run, same seeds; < 1 is better).  Nothing is tuned
per seed or per table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.controllers_table import parse_spec  # noqa: E402

RULES = ("returned", "verified", "found")
NULL_SEED = 10_000
_STATE: dict = {}


def load_world(args) -> dict:
    """The experiment, the truth, and the supernet's search reward of EVERY genotype of the space.

    Every genotype, not every network: two genotypes of one network (an identity op in another place of a
    stage) are one network to the table but two paths of the supernet, through different weights -- the
    supernet scores them differently (by up to 3 points on the quickstart's supernet), and a search is told
    the score of the genotype it proposed."""
    from nas.cost.objective import reward
    from nas.evaluators.outcome import Scoring
    from nas.experiment.search import load_experiment
    from nas.search.truth import load_truth, truth_table
    from search_spaces import network_key

    exp = load_experiment(args.experiment)
    truth = load_truth(truth_table(exp), exp.objective, exp.target)
    space = exp.search_space
    sizes = tuple(space.decision_sizes)
    genotypes = [space.decode(codes) for codes in np.ndindex(*sizes)]
    index = {network_key(g): i for i, (g, _) in enumerate(truth.table.networks())}
    net_of = np.array([index[network_key(g)] for g in genotypes])
    acc, score_s, train_s, checkpoint = _supernet_scores(args, genotypes)
    scoring = Scoring(exp.objective, exp.target)
    cost = np.array([scoring.counts(g.to_string(), g)["cost"] for g in genotypes])
    search = np.array([reward(float(a), float(c), exp.objective) for a, c in zip(acc, cost)])
    # the table's own genotype of each network: the fidelity over networks
    representative = np.array([int(np.ravel_multi_index(space.encode(g), sizes)) for g, _ in truth.table.networks()])
    return {"exp": exp, "truth": truth, "space": space, "sizes": sizes, "genotypes": [g.to_string() for g in genotypes],
            "net_of": net_of, "accuracy": acc, "search": search, "representative": representative,
            "score_s": score_s, "train_s": train_s, "checkpoint": checkpoint}


def _supernet_scores(args, genotypes) -> tuple[np.ndarray, float, float, str]:
    """Held-out accuracy of every genotype by the supernet (cached in ``--scores`` for that checkpoint)."""
    checkpoint, train_s = args.checkpoint, 0.0
    if checkpoint is None:
        checkpoint, train_s = _train(args.supernet, args.supernet_set)
    stamp = {"checkpoint": str(Path(checkpoint).resolve()), "mtime": os.path.getmtime(checkpoint),
             "genotypes": len(genotypes)}
    if args.scores and Path(args.scores).is_file():
        saved = json.loads(Path(args.scores).read_text(encoding="utf-8"))
        if saved.get("stamp") == stamp:
            print(f"supernet scores of {len(genotypes)} genotypes read from {args.scores}", flush=True)
            return np.array(saved["accuracy"]), float(saved["score_s"]), train_s, checkpoint
    from nas.experiment.search import load_experiment
    from nas.supernet import SupernetScorer

    ev = load_experiment(args.experiment).evaluator
    scorer = SupernetScorer.from_checkpoint(checkpoint, calib_batches=ev.calib_batches, device=ev.device)
    t0 = time.perf_counter()
    scores = scorer.score_many(genotypes)
    score_s = time.perf_counter() - t0
    failed = [g.to_string() for g, s in zip(genotypes, scores) if not s.ok]
    if failed:
        raise SystemExit(f"{len(failed)} genotypes failed to score, e.g. {failed[0]}")
    acc = np.array([s.accuracy for s in scores])
    print(f"supernet scored all {len(genotypes)} genotypes in {score_s:.0f} s (prefix-shared)", flush=True)
    if args.scores:
        Path(args.scores).write_text(json.dumps({"stamp": stamp, "accuracy": acc.tolist(), "score_s": score_s}),
                                     encoding="utf-8")
    return acc, score_s, train_s, checkpoint


def _train(path: str, overrides: list[str]) -> tuple[str, float]:
    from nas.experiment.supernet import load_supernet_experiment
    from nas.supernet import train_supernet

    exp = load_supernet_experiment(path, overrides)
    name = "bench_discovery_supernet" + "".join("_" + o.replace("=", "").replace(".", "_") for o in overrides)
    exp = replace(exp, output=replace(exp.output, name=name))
    t0 = time.perf_counter()
    summary = train_supernet(exp, resume=exp.checkpoint_path.exists())
    wall = time.perf_counter() - t0
    print(f"supernet {path}: {summary.epochs} epochs, {wall:.0f} s wall -> {summary.checkpoint}", flush=True)
    return str(summary.checkpoint), wall


def run_arm(job: tuple) -> tuple:
    """One search of ``budget`` samples; returns the genotype index of each sample, in order, and the seconds."""
    from nas.experiment.search import build_controller, with_controller

    label, name, settings, seed = job
    w = _STATE["world"]
    exp = with_controller(w["exp"], name)
    exp = replace(exp, controller=replace(exp.controller, seed=seed, settings=settings))
    controller = build_controller(exp)
    batch, budget = max(1, exp.evaluator.batch), exp.budget.samples
    nets: list[int] = []
    t0 = time.perf_counter()
    while len(nets) < budget:
        asked = [controller.ask() for _ in range(min(batch, budget - len(nets)))]
        for g in asked:
            i = int(np.ravel_multi_index(w["space"].encode(g), w["sizes"]))
            nets.append(i)
            controller.tell(g, float(w["search"][i]))
    return job, nets, time.perf_counter() - t0


def _init(world: dict) -> None:
    _STATE["world"] = world


def judge(samples: list[int], world: dict, top_k: int) -> dict[str, int]:
    """The network each pick rule takes from one arm's samples (``nas.search.truth.picks``, the report's rule)."""
    from nas.search.truth import picks

    rewards, net_of = world["truth"].rewards, world["net_of"]
    rows = [{"index": j, "genotype": world["genotypes"][i], "reward": float(world["search"][i]),
             "true_reward": float(rewards[net_of[i]]), "net": int(net_of[i]), "status": "ok"}
            for j, i in enumerate(samples)]
    return {rule: row["net"] for rule, row in picks(rows, top_k).items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiment", default="experiments/quickstart.yaml")
    p.add_argument("--supernet", default="experiments/supernet_macro.yaml", help="trained when no --checkpoint")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--supernet-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override of the supernet file when training, e.g. supernet.seed=1 (repeatable)")
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--controllers", default="random,evolution,rl,bayes")
    p.add_argument("--scores", default=None, help="cache of the supernet's scores of every network (JSON)")
    p.add_argument("--json", default=None)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--check-run", default=None, metavar="RUN_DIR",
                   help="a `nas search` run dir of the experiment: check that the bench replays its search and "
                        "baseline exactly (same genotypes, same scores)")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.workers < 1:
        print("error: --seeds and --workers must be >= 1", file=sys.stderr)
        return 2
    world = load_world(args)
    exp, truth = world["exp"], world["truth"]
    top_k = exp.verify.top_k
    specs = [parse_spec(s) for s in args.controllers.split(",")]
    own = exp.controller
    if own.settings:
        own_label = own.name + ":" + "+".join(f"{k}={v}" for k, v in sorted(own.settings.items()))
        specs.append((f"{own_label} (the experiment's)", own.name, dict(own.settings)))
    jobs = [("baseline", "random", {}, s) for s in range(args.seeds)]
    jobs += [(label, name, settings, s + (NULL_SEED if name == "random" and not settings else 0))
             for label, name, settings in specs for s in range(args.seeds)]
    _print_head(world, exp, args, top_k)
    start = time.perf_counter()
    if args.workers > 1:
        with Pool(args.workers, initializer=_init, initargs=(world,)) as pool:
            done = pool.map(run_arm, jobs, chunksize=1)
    else:
        _init(world)
        done = [run_arm(j) for j in jobs]
    wall = time.perf_counter() - start
    if args.check_run:
        check_run(args.check_run, done, world)
    picked = {(job[0], job[3] % NULL_SEED): judge(nets, world, top_k) for job, nets, _ in done}
    secs = {}
    for job, _, s in done:
        secs[job[0]] = secs.get(job[0], 0.0) + s
    result = report(picked, secs, world, [("baseline", "random", {})] + specs, args.seeds, top_k)
    print(f"\n{len(jobs)} searches of {exp.budget.samples} samples in {wall:.0f} s wall")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float), encoding="utf-8")
    return 0


def check_run(run_dir: str, done: list, world: dict) -> None:
    """The bench's arms of the run's seed against the run's trials.jsonl: the same genotypes and scores?"""
    from nas.search import results

    exp = world["exp"]
    seed = exp.controller.seed
    own = next(j[0] for j, _, _ in done if j[0] != "baseline" and j[1] == exp.controller.name and j[3] == seed
               and j[2] == dict(exp.controller.settings))
    samples = {(j[0], j[3]): nets for j, nets, _ in done}
    for folder, job in ((Path(run_dir), (own, seed)), (Path(run_dir) / "baseline", ("baseline", seed))):
        rows = sorted(results.read_trials(folder), key=lambda r: r["index"])
        mine = samples[job]
        same = sum(r["genotype"] == world["genotypes"][i] for r, i in zip(rows, mine))
        diff = max((abs(r["reward"] - world["search"][i]) for r, i in zip(rows, mine)), default=float("nan"))
        print(f"check {folder}: {same} of {len(rows)} genotypes equal to the bench's {job[0]} seed {job[1]} "
              f"({len(mine)} samples), search reward max |difference| {diff:.2e}", flush=True)


def _print_head(world: dict, exp, args, top_k: int) -> None:
    from nas.stats import kendall

    truth = world["truth"]
    rep = world["representative"]
    tau = kendall(world["search"][rep], truth.rewards)
    tau_acc = kendall(world["accuracy"][rep], truth.accuracies)
    n_top = max(1, round(0.05 * len(truth.rewards)))
    top_true = set(np.argsort(-truth.rewards, kind="stable")[:n_top].tolist())
    p5 = len(top_true & set(np.argsort(-world["search"][rep], kind="stable")[:n_top].tolist())) / n_top
    best = truth.rewards[world["net_of"][int(np.argmax(world["search"]))]]
    print(f"experiment {args.experiment}: space {exp.space}, objective {exp.objective.form} T="
          f"{exp.objective.target / 1e6:g}M {exp.objective.cost}, budget {exp.budget.samples}, batch "
          f"{exp.evaluator.batch}, verify.top_k {top_k}; {args.seeds} seeds")
    print(f"supernet {world['checkpoint']} ({world['train_s']:.0f} s training, {world['score_s']:.0f} s scoring all "
          f"{len(world['genotypes'])} genotypes): over the {len(truth.rewards)} networks (the table's genotype of "
          f"each) Kendall tau {tau:+.3f} on the reward, {tau_acc:+.3f} on accuracy, precision at the top 5% "
          f"{p5:.2f}; the supernet's best genotype is a network of true rank "
          f"{1 + int(np.count_nonzero(truth.rewards > best))}", flush=True)


def _stats(nets: list[int], truth) -> dict[str, float]:
    true = truth.rewards[nets]
    ranks = np.array([1 + int(np.count_nonzero(truth.rewards > v)) for v in true])
    pct = np.array([100.0 * np.count_nonzero(truth.rewards <= v) / len(truth.rewards) for v in true])
    return {"rank": float(np.median(ranks)), "percentile": float(np.median(pct)),
            "regret": float(np.median(truth.rewards.max() - true)), "mean_regret": float(np.mean(truth.rewards.max() - true))}


def report(picked: dict, secs: dict, world: dict, specs: list, seeds: int, top_k: int) -> dict:
    truth = world["truth"]
    rules = [r for r in RULES if top_k > 0 or r != "verified"]
    result: dict = {"seeds": seeds, "top_k": top_k, "controllers": {}}
    base = {rule: _stats([picked[("baseline", s)][rule] for s in range(seeds)], truth) for rule in rules}
    for rule in rules:
        what = {"returned": "best by search score (what the run returns)",
                "verified": f"best in truth of its top {top_k} by search score (the verified pick)",
                "found": "best visited in truth (a perfect evaluator on the same samples)"}[rule]
        print(f"\n## pick: {what}; median over {seeds} seeds")
        print("| controller | rank | percentile | regret | mean regret | beat the baseline | tie | lost | "
              "regret / baseline's | ms/sample |")
        print("| --- " * 10 + "|")
        for label, _, _ in specs:
            mine = [picked[(label, s)][rule] for s in range(seeds)]
            theirs = [picked[("baseline", s)][rule] for s in range(seeds)]
            st = _stats(mine, truth)
            a, b = truth.rewards[mine], truth.rewards[theirs]
            beat, tie = float(np.mean(a > b)), float(np.mean(a == b))
            ratio = st["regret"] / base[rule]["regret"] if base[rule]["regret"] > 0 else float("nan")
            ms = 1e3 * secs[label] / (seeds * world["exp"].budget.samples)
            name = "baseline: random, same seed" if label == "baseline" else label
            print(f"| {name} | {st['rank']:.0f} | {st['percentile']:.1f} | {st['regret']:.4f} | "
                  f"{st['mean_regret']:.4f} | {100 * beat:.0f}% | {100 * tie:.0f}% | {100 * (1 - beat - tie):.0f}% | "
                  f"{ratio:.2f} | {ms:.2f} |")
            result["controllers"].setdefault(label, {})[rule] = {**st, "beat": beat, "tie": tie, "ratio": ratio}
    seed0 = {label: {rule: int(1 + np.count_nonzero(truth.rewards > truth.rewards[picked[(label, 0)][rule]]))
                     for rule in rules} for label, _, _ in specs}
    print("\nseed 0 (the seed `make search` runs), true rank of each pick: " + "; ".join(
        f"{label} " + "/".join(f"{r} {v}" for r, v in ranks.items()) for label, ranks in seed0.items()))
    result["seed0"] = seed0
    return result


if __name__ == "__main__":
    raise SystemExit(main())
