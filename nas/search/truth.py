"""Verification against a converged benchmark table: every candidate of both arms, for free (no training).

When the space has a tabular benchmark (``nas.data.tables``: NAS-Bench-Macro for ``nas-bench-macro``,
or a user's table), the truth of a network is the table's mean accuracy over its recorded trainings,
and its TRUE reward is the experiment's reward (``ACC * (cost / T) ** w``, the target model's cost) of
that mean.  ``verify.truth`` picks the truth (:func:`truth_table` is the one rule for ``auto``).

:func:`truth_summary` reads a run dir (rows of the search and the baseline) and gives, for each arm:

* the network it returns (its best by search reward) with its true reward and accuracy, its rank and
  percentile among ALL distinct networks of the table (by true reward; by accuracy too), and the
  regret to the table's best true reward;
* its verified pick (``verify.top_k`` > 0): the best in truth of its top k distinct networks by search
  reward -- the protocol of a training truth (``nas.search.verify``: the top k of each arm retrained,
  each arm's result its best verified), with the table as the verifier;
* the best network it visited in truth (what a perfect evaluator would have returned from the same
  candidates) and the best-so-far curves (plot ``truth_so_far.png``);

the verdict (did the search's verified pick -- its returned network when ``top_k`` is 0 -- beat the
baseline's on the truth, said plainly either way, and how the returned networks compare), and the
evaluator's fidelity on the distinct candidates it scored: Kendall tau and Spearman rho of its score
against the truth, next to params alone and MACs alone (``nas.stats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import Genotype, network_key

from ..config import ConfigError, from_dict
from ..cost.objective import ObjectiveConfig, reward
from ..cost.target import TargetModel
from ..data.tables import SHIPPED, BenchmarkTable
from ..evaluators.outcome import Scoring
from ..evaluators.table import cached_table, load_fitting
from ..experiment.search import Experiment
from ..experiment.sections import VerifyConfig
from ..stats import kendall, spearman
from . import results
from .verify import top_genotypes

PLOT = "truth_so_far.png"
SCATTER = "truth_vs_search.png"
#: Fidelity is measured on at most this many distinct candidates (a fixed subsample above; tau is O(n^2)).
FIDELITY_MAX = 2000


def shipped_table_of(space_name: str) -> str | None:
    """The shipped benchmark of a space (``nas-bench-macro`` for the ``nas-bench-macro`` space), or None."""
    return next((name for name, (space, _) in SHIPPED.items() if space == space_name), None)


def truth_table(exp: Experiment) -> str | None:
    """The table verification looks up (None: verification trains) -- the one rule of ``verify.truth``.

    The table: ``verify.table``, else the evaluator's (``evaluator.kind: table``), else the space's shipped
    one.  ``auto`` uses it where there is one (the evaluator is a table, or the space ships a benchmark);
    ``table`` requires one; ``training`` never uses one.
    """
    v = exp.verify
    if v.truth == "training":
        return None
    table = v.table or (exp.evaluator.table if exp.evaluator.kind == "table" else None) or \
        shipped_table_of(exp.search_space.name)
    if table is None and v.truth == "table":
        raise ConfigError(f"verify.truth: table, but space {exp.search_space.name!r} has no shipped benchmark "
                          "table; set verify.table to a .json/.csv table of this space, or verify.truth: training")
    return table


def check_truth(exp: Experiment) -> str | None:
    """Before any slow work: the truth table loads and fits the space (one line); its source."""
    table = truth_table(exp)
    if table is not None:
        load_fitting(table, exp.search_space, "verify.table" if exp.verify.table else "verify.truth")
    return table


@dataclass(frozen=True)
class Truth:
    """A table and the true reward of every distinct network under one objective and target."""

    table: BenchmarkTable
    objective: ObjectiveConfig
    target: TargetModel
    rewards: np.ndarray   # true reward of every distinct network, in the table's order
    accuracies: np.ndarray

    def true_reward(self, accuracy: float, cost: float) -> float:
        return reward(accuracy, cost, self.objective)

    def rank(self, value: float, of: np.ndarray) -> tuple[int, float]:
        return 1 + int(np.count_nonzero(of > value)), 100.0 * float(np.count_nonzero(of <= value)) / len(of)


@lru_cache(maxsize=4)
def load_truth(source: str, objective: ObjectiveConfig, target: TargetModel) -> Truth:
    """The table of ``source`` with every network's true reward (its cost on ``target``: ~0.2 ms a network)."""
    table = cached_table(source)
    scoring = Scoring(objective, target)
    accs, rewards = [], []
    for genotype, record in table.networks():
        cost = scoring.counts(genotype.to_string(), genotype)["cost"]
        accs.append(record.mean)
        rewards.append(reward(record.mean, cost, objective))
    return Truth(table, objective, target, np.array(rewards), np.array(accs))


def truth_of_run(config: dict, source: str) -> Truth:
    """The truth of a run dir's resolved config (its objective and target sections)."""
    objective = from_dict(ObjectiveConfig, config.get("objective") or {}, "objective")
    target = from_dict(TargetModel, config.get("target") or {}, "target")
    return load_truth(source, objective, target)


def _true_rows(rows: list[dict], truth: Truth) -> tuple[list[dict], int]:
    """The ok rows of an arm in order, each with ``true_accuracy`` and ``true_reward``; and how many missed."""
    out, missing = [], 0
    for row in sorted(results.ok_rows(rows), key=lambda r: r["index"]):
        record = truth.table.lookup(Genotype.from_string(row["genotype"]))
        if record is None:
            missing += 1
            continue
        out.append({**row, "true_accuracy": record.mean,
                    "true_reward": truth.true_reward(record.mean, float(row["cost"]))})
    return out, missing


def _network(row: dict, truth: Truth) -> dict[str, Any]:
    rank, pct = truth.rank(row["true_reward"], truth.rewards)
    acc_rank, acc_pct = truth.rank(row["true_accuracy"], truth.accuracies)
    return {"genotype": row["genotype"], "index": row["index"], "search_reward": row["reward"],
            "true_reward": row["true_reward"], "true_accuracy": row["true_accuracy"], "rank": rank,
            "percentile": pct, "accuracy_rank": acc_rank, "accuracy_percentile": acc_pct,
            "regret": float(truth.rewards.max()) - row["true_reward"], "macs": row["macs"]}


def _key(text: str):
    return network_key(Genotype.from_string(text))


def picks(true_rows: list[dict], top_k: int) -> dict[str, dict]:
    """The rows an arm's rules pick (rows in order, each with ``true_reward``): ``returned`` (best search reward),
    ``verified`` (``top_k`` > 0: the best true reward of the top ``top_k`` distinct networks by search reward,
    :func:`nas.search.verify.top_genotypes`) and ``found`` (the best true reward visited).  Ties: the earliest."""
    out = {"returned": max(true_rows, key=lambda r: (r["reward"], -r["index"])),
           "found": max(true_rows, key=lambda r: (r["true_reward"], -r["index"]))}
    if top_k > 0:
        out["verified"] = max(top_genotypes(true_rows, top_k, _key), key=lambda r: (r["true_reward"], -r["index"]))
    return out


def _curves(true_rows: list[dict], top_k: int) -> dict[str, list[float]]:
    """Best-so-far true reward of each pick rule after each candidate (the top k kept incrementally)."""
    curves: dict[str, list[float]] = {"found": [], "returned": [], "verified": []}
    best, incumbent, top = -np.inf, None, []  # top: up to top_k distinct networks, best search reward first
    for r in true_rows:
        best = max(best, r["true_reward"])
        if incumbent is None or r["reward"] > incumbent["reward"]:
            incumbent = r
        curves["found"].append(best)
        curves["returned"].append(incumbent["true_reward"])
        if top_k > 0:
            key = _key(r["genotype"])
            same = next((i for i, t in enumerate(top) if t[0] == key), None)
            if same is None or r["reward"] > top[same][1]["reward"]:
                top = [t for t in top if t[0] != key] + [(key, r)]
                top = sorted(top, key=lambda t: (-t[1]["reward"], t[1]["index"]))[:top_k]
            curves["verified"].append(max(t[1]["true_reward"] for t in top))
    return curves


def arm_truth(rows: list[dict], truth: Truth, top_k: int = 0, recommended: str | None = None) -> dict[str, Any] | None:
    """An arm's returned network, its verified pick (``top_k`` > 0), its best network in truth, and the curves;
    with ``recommended`` (the trial id of the controller's recommendation, ``best.yaml``), that network too when
    it is not the returned one (``bayes`` under a noisy evaluator reports by its model)."""
    true_rows, missing = _true_rows(rows, truth)
    if not true_rows:
        return None
    curves = _curves(true_rows, top_k)
    chosen = picks(true_rows, top_k)
    pick = next((r for r in true_rows if r.get("trial_id") == recommended), None) if recommended else None
    if pick is not None and pick["trial_id"] != chosen["returned"].get("trial_id"):
        chosen["recommended"] = pick
    out = {"candidates": len(true_rows), "missing": missing, "top_k": top_k,
           **{which: _network(row, truth) for which, row in chosen.items()},
           "curve_found": curves["found"], "curve_returned": curves["returned"],
           "points": [(r["reward"], r["true_reward"]) for r in true_rows]}
    if top_k > 0:
        out["curve_verified"] = curves["verified"]
    return out


def fidelity(rows: list[dict], truth: Truth) -> dict[str, Any] | None:
    """Kendall tau and Spearman rho against the truth of the evaluator's score and of params / MACs alone."""
    by_genotype = {r["genotype"]: r for r in _true_rows(rows, truth)[0]}
    distinct = list(by_genotype.values())
    if len(distinct) < 3:
        return None
    if len(distinct) > FIDELITY_MAX:
        keep = np.random.default_rng(0).choice(len(distinct), FIDELITY_MAX, replace=False)
        distinct = [distinct[i] for i in sorted(keep)]
    col = {k: np.array([r[k] for r in distinct], float)
           for k in ("accuracy", "reward", "params", "macs", "true_accuracy", "true_reward")}
    pairs = {"search score": ("accuracy", "reward"), "params alone": ("params", "params"),
             "MACs alone": ("macs", "macs")}
    out = {"n": len(distinct), "rows": {}}
    for name, (for_acc, for_reward) in pairs.items():
        out["rows"][name] = {"accuracy": (kendall(col[for_acc], col["true_accuracy"]),
                                          spearman(col[for_acc], col["true_accuracy"])),
                             "reward": (kendall(col[for_reward], col["true_reward"]),
                                        spearman(col[for_reward], col["true_reward"]))}
    return out


def truth_summary(run_dir: Path, config: dict, source: str, baseline_dir: Path | None) -> dict[str, Any]:
    """Everything the report says about the truth of a run (see the module docstring)."""
    truth = truth_of_run(config, source)
    top_k = from_dict(VerifyConfig, config.get("verify") or {}, "verify").top_k
    search_rows = results.read_trials(run_dir)
    baseline_rows = results.read_trials(baseline_dir) if baseline_dir is not None else []
    best = int(np.argmax(truth.rewards))
    return {"table": truth.table.name, "networks": len(truth.table), "seeds": _seeds(truth.table),
            "best_reward": float(truth.rewards[best]), "best_accuracy": float(truth.accuracies.max()),
            "top_k": top_k, "search": arm_truth(search_rows, truth, top_k, _recommended_trial(run_dir)),
            "baseline": arm_truth(baseline_rows, truth, top_k) if baseline_dir is not None else None,
            "fidelity": fidelity(search_rows + baseline_rows, truth)}


def _recommended_trial(run_dir: Path) -> str | None:
    found = results.read_recommended(run_dir)
    return None if found is None else found.get("trial_id")


def _seeds(table: BenchmarkTable) -> int:
    return max(len(record.accuracies) for _, record in table.networks())


def _compare(s: dict, b: dict) -> str:
    return "better" if s["true_reward"] > b["true_reward"] else ("equal" if s["true_reward"] == b["true_reward"]
                                                                 else "worse")


def verdict(t: dict[str, Any]) -> str:
    """Did the search beat the baseline on the converged truth?  Plainly, either way.

    The pick compared: each arm's verified pick (its best in truth of its top ``top_k`` by search score: the
    protocol of a training truth) when the arms have one, else each arm's returned network (best by score);
    the sentence then also says how the returned networks compare.  A tie is not a win."""
    s, b = t.get("search"), t.get("baseline")
    if s is None or b is None:
        return "no comparison on the converged truth: the search or the baseline has no candidate in the table"
    which = "verified" if s.get("verified") and b.get("verified") else "returned"
    rs, rb = s[which], b[which]
    how = (f"each arm's best in truth of its top {t.get('top_k')} by search score" if which == "verified" else
           "each arm's best by search score")
    numbers = (f"{how}: true reward {rs['true_reward']:.4f} (rank {rs['rank']} of {t['networks']}, regret "
               f"{rs['regret']:.4f}) against the baseline's {rb['true_reward']:.4f} (rank {rb['rank']}, regret "
               f"{rb['regret']:.4f})")
    if which == "verified":
        ns, nb = s["returned"], b["returned"]
        numbers += (f"; returned by search score alone, the search's network ranks {ns['rank']} and the baseline's "
                    f"{nb['rank']} (the search's is {_compare(ns, nb)})")
    if rs["true_reward"] > rb["true_reward"]:
        return f"the search beat the equal-budget random baseline on the converged truth ({numbers})"
    return f"the search did NOT beat the equal-budget random baseline on the converged truth ({numbers})"


def _arm_line(name: str, a: dict[str, Any] | None, t: dict[str, Any]) -> list[str]:
    if a is None:
        return [f"{name}: no candidate in the table"]
    r, f = a["returned"], a["found"]
    miss = f", {a['missing']} not in the table" if a["missing"] else ""
    return [f"{name} returned (best search reward of {a['candidates']} candidates{miss}): true reward "
            f"{r['true_reward']:.4f}, accuracy {r['true_accuracy']:.4f}; rank {r['rank']} of {t['networks']} by true "
            f"reward (percentile {r['percentile']:.1f}), rank {r['accuracy_rank']} by accuracy; regret to the "
            f"table's best {r['regret']:.4f}",
            *([f"{name} recommended by the controller (by its model; search reward "
               f"{a['recommended']['search_reward']:.4f}): true reward {a['recommended']['true_reward']:.4f} (rank "
               f"{a['recommended']['rank']}, percentile {a['recommended']['percentile']:.1f}, regret "
               f"{a['recommended']['regret']:.4f})"] if a.get("recommended") else []),
            *([f"{name} verified pick (best in truth of its top {a['top_k']} by search reward): true reward "
               f"{a['verified']['true_reward']:.4f} (rank {a['verified']['rank']}, percentile "
               f"{a['verified']['percentile']:.1f}, regret {a['verified']['regret']:.4f})"] if a.get("verified") else []),
            f"{name} best visited in truth: true reward {f['true_reward']:.4f} (rank {f['rank']}, percentile "
            f"{f['percentile']:.1f}), candidate {f['index'] + 1}"]


def truth_lines(t: dict[str, Any]) -> list[str]:
    """The summary's lines about the truth (``nas results``, the end of ``nas search``, report.md)."""
    lines = [f"verified against the converged truth: table {t['table']} (mean of {t['seeds']} trainings a network; "
             f"{t['networks']} distinct networks; best true reward {t['best_reward']:.4f}); every candidate of "
             "both arms"]
    lines += _arm_line("search", t["search"], t) + _arm_line("baseline", t["baseline"], t)
    lines.append(verdict(t))
    fid = t["fidelity"]
    if fid:
        parts = [f"{name} {v['accuracy'][0]:+.2f}/{v['accuracy'][1]:+.2f} on accuracy, {v['reward'][0]:+.2f}/"
                 f"{v['reward'][1]:+.2f} on reward" for name, v in fid["rows"].items()]
        lines.append(f"evaluator fidelity on its {fid['n']} distinct candidates (Kendall tau/Spearman rho against "
                     f"the truth): {'; '.join(parts)}")
    return lines


def plot_truth(path: Path, t: dict[str, Any]) -> None:
    """Best-so-far TRUE reward against candidates, both arms (solid: best visited; dashed: the returned one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=100)
    for name, color in (("search", "C0"), ("baseline", "C1")):
        a = t.get(name)
        if not a:
            continue
        x = range(1, len(a["curve_found"]) + 1)
        ax.plot(x, a["curve_found"], color=color, label=f"{name}: best visited (true reward)")
        ax.plot(x, a["curve_returned"], "--", color=color, label=f"{name}: returned by search score")
        if a.get("curve_verified"):
            ax.plot(x, a["curve_verified"], "-.", color=color, lw=1.0,
                    label=f"{name}: best of its top {a['top_k']} by score (verified)")
    ax.axhline(t["best_reward"], color="k", lw=0.8, ls=":", label=f"table's best ({t['table']})")
    ax.set_xlabel("candidates scored")
    ax.set_ylabel("true reward (converged table mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_truth_vs_search(path: Path, t: dict[str, Any]) -> None:
    """TRUE reward against search reward, every candidate of both arms; each arm's returned network and pick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.6), dpi=100)
    for name, color in (("search", "C0"), ("baseline", "C1")):
        a = t.get(name)
        if not a:
            continue
        x, y = zip(*a["points"])
        ax.scatter(x, y, s=7, alpha=0.35, color=color, label=f"{name} candidates")
        for which, marker in (("returned", "o"), ("verified", "*")):
            n = a.get(which)
            if n:
                ax.scatter([n["search_reward"]], [n["true_reward"]], s=150, marker=marker, color=color,
                           edgecolors="k", label=f"{name}: {which} (rank {n['rank']})")
    fid = (t.get("fidelity") or {}).get("rows", {}).get("search score")
    if fid:
        ax.set_title(f"search score against the converged truth: Kendall tau {fid['reward'][0]:+.2f} on the reward",
                     fontsize=9)
    ax.axhline(t["best_reward"], color="k", lw=0.8, ls=":", label=f"table's best ({t['table']})")
    ax.set_xlabel("search reward (the evaluator's score)")
    ax.set_ylabel("true reward (converged table mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["FIDELITY_MAX", "PLOT", "SCATTER", "Truth", "arm_truth", "check_truth", "fidelity", "load_truth", "picks",
           "plot_truth", "plot_truth_vs_search", "shipped_table_of", "truth_lines", "truth_summary", "truth_table", "verdict"]
