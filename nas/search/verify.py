"""Did the search find something an equal-budget random search would not?  Read from the run dir (no Ray).

A run dir of ``nas search`` holds up to three stages, each a folder of trials.jsonl rows:

* ``.`` -- the search (the experiment's controller, ``budget.samples`` candidates);
* ``baseline/`` -- random search on the same evaluator, the same budget exactly and the same seed;
* ``verify/`` -- the top ``verify.top_k`` distinct genotypes of each by search reward, and the
  reference genotype (b0), retrained standalone with the proxy recipe once per seed of
  ``verify.seeds`` (rows carry ``seed``).

The comparison is the best verified reward of each arm: for each of its top-k genotypes the mean
reward over the seeds, the best of those means (the same selection in both arms), with the spread
(min-max over seeds) of that genotype.  A verified gain is claimed only when the search's best
genotype beat the baseline's best on every seed (its worst seed above the baseline's best seed);
otherwise the summary says that no verified gain was shown.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Callable

from ..experiment.run_dir import BASELINE_DIR, STAGES, VERIFY_DIR
from . import results


def read_stages(run_dir: Path) -> dict[str, Any]:
    """``stages.json``: the stages finished (``done``) and the genotypes chosen for verification."""
    path = Path(run_dir) / STAGES
    if not path.is_file():
        return {"done": [], "verify": None}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {"done": [], "verify": None}


def verify_dir(run_dir: Path) -> Path:
    """The verification folder of the run: ``verify/``, or ``verify-<n>/`` after a grown budget re-ran the search."""
    return Path(run_dir) / (read_stages(run_dir).get("verify_dir") or VERIFY_DIR)


def top_genotypes(rows: list[dict[str, Any]], k: int, key: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """The ``k`` best distinct genotypes by search reward (their best row each), best first.

    ``key`` (a genotype string -> its network, e.g. ``ProxyConfig.network_key``): genotypes of one key are
    one candidate (the best row of any of them stands for it)."""
    key = key or (lambda text: text)
    best: dict[Any, dict] = {}
    for row in results.ok_rows(rows):
        net = key(row["genotype"])
        if net not in best or row["reward"] > best[net]["reward"]:
            best[net] = row
    return sorted(best.values(), key=lambda r: (-r["reward"], r["index"]))[:k]


def alias_count(rows: list[dict[str, Any]], key: Callable[[str], Any]) -> int:
    """Evaluated genotypes that built the same network as another evaluated one (distinct strings - networks)."""
    texts = {r["genotype"] for r in results.ok_rows(rows)}
    return len(texts) - len({key(t) for t in texts})


def aliases_of(run_dir: Path, key: Callable[[str], Any]) -> dict[str, int]:
    """``alias_count`` of the search and the baseline (``stages.json``'s ``aliases``; the report says them)."""
    out = {"search": alias_count(results.read_trials(Path(run_dir)), key)}
    if (Path(run_dir) / BASELINE_DIR).is_dir():
        out["baseline"] = alias_count(results.read_trials(Path(run_dir) / BASELINE_DIR), key)
    return out


def verification_plan(run_dir: Path, top_k: int, reference: str | None,
                      key: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Genotypes to verify, in order, with their roles: ``search #i``, ``baseline #i``, ``reference``.

    With ``key`` two genotypes of one network are one candidate (see :func:`top_genotypes`), across the arms
    and the reference too: a network both arms found, or the reference itself, is trained once."""
    from search_spaces import resolve_genotype

    plan: dict[Any, dict] = {}
    network = key or (lambda text: text)

    def add(genotype: str, role: str, search_reward: float | None) -> dict:
        entry = plan.setdefault(network(genotype), {"genotype": genotype, "roles": [], "search_reward": {}})
        entry["roles"].append(role)
        if search_reward is not None:
            entry["search_reward"][role.split(" ")[0]] = search_reward
        return entry

    for arm, folder in (("search", Path(run_dir)), ("baseline", Path(run_dir) / BASELINE_DIR)):
        for i, row in enumerate(top_genotypes(results.read_trials(folder), top_k, key), 1):
            add(row["genotype"], f"{arm} #{i}", row["reward"])
    if reference is not None:
        add(resolve_genotype(reference).to_string(), "reference", None)["name"] = reference
    return list(plan.values())


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def verification_table(run_dir: Path) -> list[dict[str, Any]]:
    """One row per planned genotype: roles, search reward, verified reward/accuracy per seed and their stats."""
    plan = read_stages(run_dir).get("verify") or []
    rows = results.read_trials(verify_dir(run_dir))
    table = []
    for entry in plan:
        mine = [r for r in rows if r.get("genotype") == entry["genotype"]]
        ok = sorted(results.ok_rows(mine), key=lambda r: r.get("seed", 0))
        item = dict(entry, seeds={int(r.get("seed", 0)): r["reward"] for r in ok},
                    accuracy={int(r.get("seed", 0)): r["accuracy"] for r in ok},
                    failed=sum(r.get("status") == "failed" for r in mine),
                    macs=(mine[0]["macs"] if mine else None))
        item["reward"] = _stats(list(item["seeds"].values())) if ok else None
        item["verified_accuracy"] = _stats(list(item["accuracy"].values())) if ok else None
        table.append(item)
    return table


def _best_of(table: list[dict], arm: str) -> dict | None:
    mine = [t for t in table if any(r.startswith(arm + " ") for r in t["roles"]) and t["reward"]]
    return max(mine, key=lambda t: t["reward"]["mean"]) if mine else None


def compare(table: list[dict], seeds: int | None = None) -> dict[str, Any]:
    """The search's best verified reward against the baseline's, and whether that is a verified gain."""
    search, base = _best_of(table, "search"), _best_of(table, "baseline")
    ref = next((t for t in table if "reference" in t["roles"] and t["reward"]), None)
    out: dict[str, Any] = {"search": search, "baseline": base, "reference": ref, "gain": None, "verified_gain": False}
    if search and base:
        s, b = search["reward"], base["reward"]
        out["gain"] = s["mean"] - b["mean"]
        common = set(search["seeds"]) & set(base["seeds"])
        out["verified_gain"] = bool(common) and all(search["seeds"][k] > base["seeds"][k] for k in common) \
            and s["min"] > b["max"]
    return out


def _fmt(t: dict | None) -> str:
    if not t or not t["reward"]:
        return "n/a"
    r = t["reward"]
    return f"{r['mean']:.4f} (seeds {r['n']}: {r['min']:.4f}..{r['max']:.4f}, sd {r['std']:.4f})"


def comparison_lines(cmp: dict[str, Any]) -> list[str]:
    """The summary's verdict, in words that never claim more than the numbers show."""
    lines = [f"verified best of the search:   {_fmt(cmp['search'])}",
             f"verified best of the baseline: {_fmt(cmp['baseline'])}  (random search, same evaluator, budget "
             "and seed)"]
    if cmp["reference"]:
        lines.append(f"reference {cmp['reference'].get('name', '')} (verified the same way): "
                     f"{_fmt(cmp['reference'])}")
    if cmp["gain"] is None:
        lines.append("no verified comparison: the search or the baseline has no verified genotype")
    elif cmp["verified_gain"]:
        lines.append(f"verified gain: {cmp['gain']:+.4f} reward over the baseline's best; the search's best beat "
                     "it on every seed (the ranges over seeds do not overlap)")
    else:
        lines.append(f"no verified gain shown: the difference {cmp['gain']:+.4f} is within the spread over seeds "
                     "(the search's best did not beat the baseline's best on every seed)")
    return lines


def stage_summary(folder: Path) -> dict[str, Any]:
    rows = results.read_trials(folder)
    return {"trials": len(rows), "failed": sum(r.get("status") == "failed" for r in rows),
            "best": results.best_row(rows), "rows": rows}


__all__ = ["BASELINE_DIR", "STAGES", "VERIFY_DIR", "compare", "comparison_lines", "read_stages", "stage_summary",
           "top_genotypes", "verification_plan", "verification_table", "verify_dir"]
