"""Benchmark: every controller on NAS-Bench-Macro, against Optuna TPE, nevergrad NGOpt and uniform sampling.

    python bench/controllers_table.py [--seeds 20] [--noisy-seeds 40] [--budgets 25,50,100,200,500]
        [--controllers random,evolution,rl,bayes,tpe,ngopt] [--objectives accuracy,reward,noisy] [--workers 1]
        [--no-cost]

One sample = one lookup in the converged NAS-Bench-Macro table (Su et al. 2021; 6,561 genotypes,
3,969 networks, three CIFAR-10 trainings each).  Objectives: ``accuracy`` (the mean of the three),
``reward`` (MnasNet's ``ACC * (MACs / T) ** -0.07`` with T the table's median MACs) and ``noisy`` (the
searcher is told one recorded training drawn per lookup; judged on the mean).  Every searcher runs with
its defaults (nothing tuned per seed or per table); effnas controllers get ``budget=`` (the hint a
search passes): a controller that sizes itself by it (evolution) runs once per budget, the others
once at the largest budget, read at each prefix.  Peers in the same run: Optuna's TPE
(``multivariate=True``, otherwise defaults), nevergrad's NGOpt over deterministic choices (told the
budget), and the exact order statistics of uniform sampling without repeats.

Printed per objective: the median true value of the reported best at each budget -- each searcher's
own rule: ``recommend()`` of an effnas controller (told the objective's noise as a search tells it the table
evaluator's: 0 for the exact objectives, the trainings' spread for ``noisy``; bayes's default ``recommend: auto``
then reports by its model under that noise), TPE's ``best_trial``, NGOpt's ``provide_recommendation()``;
``bayes`` is also shown reporting its best told result (``recommend: best_told``, the same runs; other rules:
bench/noisy_recommend.py); samples to the first network of the table's top 1% / top 0.1% (median over seeds;
``>B`` when fewer than half reach it; the share of seeds reaching it by the largest budget); the share
of seeds that find the single best network and whose reported best is in the true top 1%, by the
largest budget; proposals that repeat a genotype or an alias of a network already sampled; the
searcher's own time per sample; then the ratio of each controller's median samples to top 1% to TPE's;
last, each effnas controller's time per ask (every bayes setting) after 1,000 told results on the MnasNet
space, and the time of one known-noise and one posterior-mean recommendation.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.controllers_peers import (OBJECTIVES, Landscape, Run, run_effnas, shared_landscape, run_ngopt, run_tpe,  # noqa: E402
                                     uniform_order_statistics)

PEERS = ("tpe", "ngopt")
BUDGET_AWARE = ("evolution", "ngopt")
MODEL_RECOMMENDS = ("bayes",)  # also shown reporting its best told result (same runs)


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """'evolution:population=16+sample=4' -> (label, name, settings)."""
    name, _, rest = spec.partition(":")
    settings = {}
    for item in filter(None, rest.split("+")):
        key, _, value = item.partition("=")
        settings[key] = _value(value)
    return spec, name, settings


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def one_run(job: tuple) -> tuple:
    label, name, settings, objective, seed, budget, budgets = job
    land = shared_landscape()
    checkpoints = {b for b in budgets if b <= budget}
    if name == "tpe":
        run = run_tpe(land, objective, seed, budget, checkpoints)
    elif name == "ngopt":
        run = run_ngopt(land, objective, seed, budget, checkpoints)
    else:
        run = run_effnas(name, settings, land, objective, seed, budget, checkpoints)
    return job, run


def metrics(run: Run, truth: np.ndarray, budget: int, thresholds: dict, alternative: bool = False) -> dict:
    """Of the first ``budget`` samples of a run; the reported best is the searcher's own recommendation, or
    with ``alternative`` bayes's best told result."""
    networks = np.asarray(run.networks[:budget])
    values = truth[networks]
    reported = float(truth[(run.alternative if alternative else run.recommended)[budget]])
    out = {"reported": reported, "seconds": run.seconds / len(run.observed)}
    for label, threshold in thresholds.items():
        hits = np.nonzero(values >= threshold)[0]
        out[label] = int(hits[0]) + 1 if len(hits) else math.inf
    seen_codes, seen_nets, repeats, aliases = set(), set(), 0, 0
    for codes, net in zip(run.codes[:budget], run.networks[:budget]):
        repeats += codes in seen_codes
        aliases += codes not in seen_codes and net in seen_nets
        seen_codes.add(codes)
        seen_nets.add(net)
    out["repeats"], out["aliases"] = repeats, aliases
    out["reported_top1"] = reported >= thresholds["top1"]
    return out


def _median_samples(samples: list[float], cap: int) -> str:
    med = float(np.median(samples))
    reach = 100.0 * np.mean(np.isfinite(samples))
    text = f">{cap}" if not math.isfinite(med) else f"{med:.0f}"
    return f"{text} ({reach:.0f}%)"


def report(objective: str, land: Landscape, specs: list, results: dict, seeds: list[int], budgets: list[int]) -> None:
    truth = land.true_values(objective)
    order = np.sort(truth)[::-1]
    n = len(order)
    tops = {"top1": max(1, math.ceil(0.01 * n)), "top01": max(1, math.ceil(0.001 * n)), "best": 1}
    thresholds = {k: float(order[v - 1]) for k, v in tops.items()}
    big = max(budgets)
    scale = 100.0
    print(f"\n## {objective}: {len(seeds)} seeds; top 1% = {tops['top1']} networks "
          f"(>= {thresholds['top1'] * scale:.2f}), "
          f"top 0.1% = {tops['top01']}, best {thresholds['best'] * scale:.2f} (x100)")
    head = " | ".join(f"best@{b}" for b in budgets)
    print(f"| searcher | {head} | to top 1% | to top 0.1% | best found @{big} | reported in top 1% @{big} | "
          f"repeats | aliases | ms/sample |")
    print("|" + " --- |" * (len(budgets) + 8))
    uni = uniform_order_statistics(land, objective, budgets, [tops["top1"], tops["top01"], 1])
    cells = [f"{uni['best'][b] * scale:.2f}" for b in budgets]
    to = [f"{uni['to_top'][k][0] or f'>{big}'} ({100 * uni['to_top'][k][1]:.0f}%)"
          for k in (tops["top1"], tops["top01"])]
    print(f"| uniform, no repeats (exact) | {' | '.join(cells)} | {to[0]} | {to[1]} | "
          f"{100 * uni['to_top'][1][1]:.0f}% | - | 0 | 0 | - |")
    medians = {}
    rows = [(label, name, False) for label, name, _ in specs]
    rows += [(label, name, True) for label, name, _ in specs if name in MODEL_RECOMMENDS]
    for label, name, alternative in rows:
        per_budget = {b: [] for b in budgets}
        for seed in seeds:
            for b in budgets:
                run = results[(label, objective, seed, b if name in BUDGET_AWARE else big)]
                per_budget[b].append(metrics(run, truth, b, thresholds, alternative))
        last = per_budget[big]
        if alternative:
            label = f"{label}, reporting recommend: best_told"
        cells = [f"{np.median([m['reported'] for m in per_budget[b]]) * scale:.2f}" for b in budgets]
        if not alternative:  # samples to the top 1% do not depend on the reporting rule
            medians[label] = float(np.median([m["top1"] for m in last]))
        print(f"| {label} | {' | '.join(cells)} | {_median_samples([m['top1'] for m in last], big)} | "
              f"{_median_samples([m['top01'] for m in last], big)} | "
              f"{100 * np.mean([math.isfinite(m['best']) for m in last]):.0f}% | "
              f"{100 * np.mean([m['reported_top1'] for m in last]):.0f}% | "
              f"{sum(m['repeats'] for m in last)} | {sum(m['aliases'] for m in last)} | "
              f"{1e3 * np.mean([m['seconds'] for m in last]):.2f} |")
    if "tpe" in medians:
        ratios = ", ".join(f"{k} {v / medians['tpe']:.2f}" for k, v in medians.items() if k != "tpe")
        print(f"median samples to top 1%, ratio to TPE (same run; < 1 is fewer): {ratios}")


def ask_cost(told: int = 1000, asks: int = 40) -> None:
    """ms per ask of each effnas controller (every bayes setting) after ``told`` results, on the MnasNet space
    (42 decisions): median, mean and max of ``asks`` asks, each after a tell (so a lazily refit posterior shows
    in the mean and max); then bayes's ``posterior_mean`` recommendation at ``told`` results."""
    from controllers import list_controllers, make_controller
    from search_spaces import get_space

    space = get_space("mnasnet")
    line = []
    bayes = None
    for label, name, settings in [(n, n, {}) for n in list_controllers()] + [
            ("bayes:interactions=adjacent", "bayes", {"interactions": "adjacent"})]:
        controller = make_controller(name, space, seed=0, settings=settings or None, budget=told + asks)
        rng = np.random.default_rng(0)
        for _ in range(told):
            g = controller.ask()
            controller.tell(g, float(rng.random()))
        times = []
        for _ in range(asks):
            start = time.perf_counter()
            g = controller.ask()
            times.append(time.perf_counter() - start)
            controller.tell(g, float(rng.random()))
        line.append(f"{label} {1e3 * np.median(times):.1f}/{1e3 * np.mean(times):.1f}/{1e3 * np.max(times):.1f}")
        bayes = controller if name == "bayes" else bayes
    start = time.perf_counter()
    bayes.noise_best(0.002)
    known = time.perf_counter() - start
    start = time.perf_counter()
    bayes.posterior_best()
    print(f"\nms per ask after {told} told results, MnasNet space (median/mean/max of {asks}, load "
          f"{os.getloadavg()[0]:.1f}): " + ", ".join(line))
    print(f"bayes recommendation at {told + asks} told results: known noise (recommend: auto) {1e3 * known:.0f} ms, "
          f"posterior_mean {1e3 * (time.perf_counter() - start):.0f} ms (once per recommendation, not per ask)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--noisy-seeds", type=int, default=None, help="seeds for the noisy objective (default --seeds)")
    p.add_argument("--budgets", default="25,50,100,200,500")
    p.add_argument("--controllers", default="random,evolution,rl,bayes,tpe,ngopt")
    p.add_argument("--objectives", default=",".join(OBJECTIVES))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--no-cost", action="store_true", help="skip the ms-per-ask line at 1,000 told results")
    args = p.parse_args(argv)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    specs = [parse_spec(s) for s in args.controllers.split(",")]
    objectives = args.objectives.split(",")
    bad = [o for o in objectives if o not in OBJECTIVES]
    if bad or args.seeds < 1 or not budgets or min(budgets) < 1:
        print(f"error: objectives must be among {', '.join(OBJECTIVES)}, --seeds >= 1, budgets >= 1", file=sys.stderr)
        return 2
    seeds_of = {o: list(range(args.noisy_seeds if (o == "noisy" and args.noisy_seeds) else args.seeds))
                for o in objectives}
    jobs = [(label, name, settings, o, seed, b) for label, name, settings in specs for o in objectives
            for seed in seeds_of[o] for b in (budgets if name in BUDGET_AWARE else [max(budgets)])]
    jobs = [job + (budgets,) for job in jobs]
    start = time.perf_counter()
    if args.workers > 1:
        with Pool(args.workers) as pool:
            done = pool.map(one_run, jobs, chunksize=1)
    else:
        done = [one_run(job) for job in jobs]
    results = {(job[0], job[3], job[4], job[5]): run for job, run in done}
    print(f"# controllers on NAS-Bench-Macro: {len(jobs)} runs in {time.perf_counter() - start:.0f} s "
          f"({args.workers} worker(s), load {os.getloadavg()[0]:.1f})")
    for o in objectives:
        report(o, shared_landscape(), specs, results, seeds_of[o], budgets)
    if not args.no_cost:
        ask_cost()
    return 0


if __name__ == "__main__":
    sys.exit(main())
