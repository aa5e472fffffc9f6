"""The run's report: ``report.md`` + three plots, and the summary ``nas results`` prints (files only, no Ray).

Plots (PNG, matplotlib Agg):

* ``best_so_far.png``: best search reward against candidates scored, search and baseline;
* ``pareto_verified.png``: two panels over the target model's MACs, each axis saying which accuracy it
  shows -- left, every candidate of the search and of the baseline at the accuracy the evaluator gave
  it during the search (e.g. a supernet's inherited weights), with their fronts; right, the verified
  genotypes and the reference (b0) at their mean accuracy trained from scratch;
* ``verified_vs_search.png``: verified reward (mean, min-max over seeds) against search reward;
* ``truth_so_far.png`` and ``truth_vs_search.png`` (a run verified against a converged table,
  ``nas.search.truth``, instead of the two verification plots above): best-so-far TRUE reward against
  candidates, both arms; true reward against search reward, every candidate, each arm's picks marked.

Warnings: what made a stage's scores meaningless (``nas.search.session.meaningless``: every score at chance
level, or a spread below the evaluator's own noise), as the session wrote them into its state, and the
same check over all the stage's rows -- in the summary and at the top of ``report.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import json

from ..evaluators.base import EvaluatorInfo
from ..experiment.run_dir import CONFIG, STATE
from ..files import atomic_write
from . import results
from .verify import (BASELINE_DIR, compare, comparison_lines, read_stages, stage_summary, verification_table)

REPORT = "report.md"
PLOTS = ("best_so_far.png", "pareto_verified.png", "verified_vs_search.png")


def summarize(run_dir: Path) -> dict[str, Any]:
    """Everything the summary shows, from the run dir's files (a finished or an interrupted run)."""
    run_dir = Path(run_dir)
    stages = read_stages(run_dir)
    table = verification_table(run_dir)
    search = stage_summary(run_dir)
    baseline = stage_summary(run_dir / BASELINE_DIR) if (run_dir / BASELINE_DIR).is_dir() else None
    return {"run_dir": run_dir, "stages": stages, "search": search, "baseline": baseline, "table": table,
            "compare": compare(table), "evaluator": _evaluator_kind(run_dir), "truth": _truth(run_dir, stages),
            "warnings": stage_warnings("search", run_dir, search) + (stage_warnings(
                "baseline", run_dir / BASELINE_DIR, baseline) if baseline else [])}


def _config(run_dir: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load((Path(run_dir) / CONFIG).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _evaluator_kind(run_dir: Path) -> str:
    return str((_config(run_dir).get("evaluator") or {}).get("kind", "proxy"))


def _truth(run_dir: Path, stages: dict) -> dict | None:
    """Verification against the converged table (``nas.search.truth``) when the run has one."""
    if not stages.get("truth"):
        return None
    from .truth import truth_summary

    baseline = Path(run_dir) / BASELINE_DIR
    return truth_summary(Path(run_dir), _config(run_dir), stages["truth"], baseline if baseline.is_dir() else None)


def stage_warnings(name: str, folder: Path, stage: dict) -> list[str]:
    """The warnings a stage's session saved, and the meaningless-score check over all its rows."""
    from .session import meaningless

    try:
        state = json.loads((Path(folder) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    out = [f"{name}: {w}" for w in state.get("warnings", [])]
    info = state.get("info") or {}
    ok = results.ok_rows(stage["rows"])
    if ok and (info.get("chance") is not None or info.get("noise")):
        text = meaningless(ok, EvaluatorInfo(chance=info.get("chance"), noise=info.get("noise")))
        if text and f"{name}: {text}" not in out and not any(text.split(" (")[0] in w for w in out):
            out.append(f"{name} (all {len(ok)} scored): {text}")
    return out


def _best_line(name: str, stage: dict | None) -> str:
    if stage is None:
        return f"{name}: not run"
    b = stage["best"]
    best = (f"best search reward {b['reward']:.4f} (accuracy {b['accuracy']:.4f}, MACs {b['macs'] / 1e6:.1f}M)"
            if b else "no candidate finished")
    return f"{name}: {stage['trials']} candidates ({stage['failed']} failed), {best}"


def table_rows(table: list[dict]) -> list[dict[str, Any]]:
    """The verification table as printable rows."""
    out = []
    for t in table:
        r = t["reward"]
        sr = t["search_reward"]
        out.append({"roles": ", ".join(t["roles"]),
                    "search reward": " / ".join(f"{v:.4f}" for v in sr.values()) or "-",
                    "verified reward": f"{r['mean']:.4f}" if r else ("failed" if t["failed"] else "pending"),
                    "min..max": f"{r['min']:.4f}..{r['max']:.4f}" if r else "-",
                    "seeds": len(t["seeds"]),
                    "accuracy": f"{t['verified_accuracy']['mean']:.4f}" if r else "-",
                    "MACs": f"{t['macs'] / 1e6:.1f}M" if t.get("macs") else "-"})
    return out


COLUMNS = ["roles", "search reward", "verified reward", "min..max", "seeds", "accuracy", "MACs"]


def summary_lines(s: dict[str, Any]) -> list[str]:
    """Plain-text summary (``nas results`` and the end of ``nas search``), table excluded."""
    done = s["stages"].get("done", [])
    lines = [f"run {s['run_dir']}  (stages finished: {', '.join(done) or 'none'})",
             _best_line("search", s["search"]), _best_line("baseline", s["baseline"])]
    aliases = s["stages"].get("aliases")
    if aliases:
        lines.append("aliases (genotypes that built the same proxy network as another, verified as one candidate): "
                     + ", ".join(f"{arm} {n}" for arm, n in aliases.items()))
    if s.get("truth"):
        from .truth import truth_lines

        lines += truth_lines(s["truth"])
    elif s["table"]:
        lines += comparison_lines(s["compare"])
    else:
        lines.append("verification: not run yet (no verified genotypes); no verified gain is claimed")
    return lines + [f"WARNING {w}" for w in s.get("warnings", [])]


def _md_table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "".join("| " + " | ".join(str(r[c]) for c in columns) + " |\n" for r in rows)


def write_report(run_dir: Path, header: str = "") -> dict[str, Any]:
    """``report.md`` and the plots in ``run_dir``; returns the summary."""
    s = summarize(run_dir)
    run_dir = Path(run_dir)
    _plots(run_dir, s)
    best = s["search"]["best"]
    warnings = ["## Warnings: these results may mean nothing", "", *[f"- {w}" for w in s["warnings"]], ""] \
        if s["warnings"] else []
    text = ["# Search report", "", header, "", *warnings, "## Summary", "",
            *[f"- {line}" for line in summary_lines(s) if not line.startswith("WARNING ")], "",
            *_truth_section(run_dir, s),
            *([] if s.get("truth") else [
                "## Verification (standalone proxy training, per seed)", "",
                _md_table(table_rows(s["table"]), COLUMNS) if s["table"] else "Not run.", "",
                "Search reward: the evaluator's score during the search (supernet: inherited weights + BN "
                "recalibration; proxy: one short training).  Verified reward: the same genotype retrained from "
                "scratch with the proxy recipe, one run per seed.", ""]),
            "## Plots", "", *[f"![{p}]({p})" for p in _plot_names(s)], ""]
    if best:
        text += ["## Best genotype of the search (by search reward)", "", f"`{best['genotype']}`", ""]
    atomic_write(run_dir / REPORT, "\n".join(text))
    return s


def _truth_section(run_dir: Path, s: dict[str, Any]) -> list[str]:
    """The converged-truth section and its plot (``nas.search.truth``), when the run has a table."""
    t = s.get("truth")
    if not t:
        return []
    from .truth import PLOT, SCATTER, plot_truth, plot_truth_vs_search

    plot_truth(run_dir / PLOT, t)
    plot_truth_vs_search(run_dir / SCATTER, t)
    rows = []
    for arm in ("search", "baseline"):
        for which, label in (("returned", "returned (best search reward)"),
                             ("recommended", "recommended by the controller (by its model)"),
                             ("verified", f"verified pick (best in truth of its top {t.get('top_k')} by search reward)"),
                             ("found", "best visited in truth")):
            n = (t.get(arm) or {}).get(which)
            if n:
                rows.append({"arm": arm, "network": label, "true reward": f"{n['true_reward']:.4f}",
                             "true accuracy": f"{n['true_accuracy']:.4f}", "rank": f"{n['rank']} of {t['networks']}",
                             "percentile": f"{n['percentile']:.1f}", "regret": f"{n['regret']:.4f}",
                             "MACs": f"{n['macs'] / 1e6:.1f}M"})
    columns = ["arm", "network", "true reward", "true accuracy", "rank", "percentile", "regret", "MACs"]
    fid = t.get("fidelity")
    fid_rows = [{"predictor": name, "tau (accuracy)": f"{v['accuracy'][0]:+.3f}",
                 "rho (accuracy)": f"{v['accuracy'][1]:+.3f}", "tau (reward)": f"{v['reward'][0]:+.3f}",
                 "rho (reward)": f"{v['reward'][1]:+.3f}"} for name, v in (fid or {}).get("rows", {}).items()]
    return [f"## Verification against the converged truth ({t['table']}, every candidate)", "",
            _md_table(rows, columns) if rows else "No candidate in the table.", "",
            "Rank and percentile: among all distinct networks of the table by true reward (the experiment's "
            "reward of the table's mean accuracy); regret: the table's best true reward minus this one.", "",
            f"Evaluator fidelity on the {fid['n']} distinct candidates it scored (against the table's mean):" if fid
            else "Evaluator fidelity: too few candidates.", "",
            _md_table(fid_rows, ["predictor", "tau (accuracy)", "rho (accuracy)", "tau (reward)", "rho (reward)"])
            if fid_rows else "", f"![{PLOT}]({PLOT})", f"![{SCATTER}]({SCATTER})", ""]


def _finish(plt, fig, ax, path: Path | None, xlabel: str, ylabel: str, legend_size: int | None = None) -> None:
    """Axis labels, grid, a legend with one entry per label (when there is any); with ``path``: save, close."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=legend_size)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if path is None:
        return
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plots(run_dir: Path, s: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [("search", s["search"], "C0"), ("baseline (random)", s["baseline"], "C1")]
    _best_so_far(plt, run_dir / PLOTS[0], arms)
    if s.get("truth"):  # no training verification: the truth section has its own plots
        return
    _pareto_verified(plt, run_dir / PLOTS[1], arms, s)
    _verified_vs_search(plt, run_dir / PLOTS[2], s["table"])


def _plot_names(s: dict[str, Any]) -> tuple[str, ...]:
    """The plots of the Plots section: with a table truth, the training-verification plots are not drawn."""
    return PLOTS[:1] if s.get("truth") else PLOTS


def _best_so_far(plt, path: Path, arms: list) -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, stage, color in arms:
        if not stage:
            continue
        rows = sorted(stage["rows"], key=lambda r: r["index"])
        best, curve = 0.0, []
        for r in rows:
            if results.ok_rows([r]):
                best = max(best, r["reward"])
            curve.append(best)
        ax.plot(range(1, len(curve) + 1), curve, color=color, label=name)
    _finish(plt, fig, ax, path, "candidates scored", "best search reward so far")


def _readable_ticks(ax, locator, formatter) -> None:
    """At most 5 ticks an axis, each label with just the digits that tell it from its neighbours."""
    import math

    ax.figure.canvas.draw()  # settle the view limits
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(locator(nbins=5))
        ticks = axis.get_major_locator().tick_values(*axis.get_view_interval())
        step = min((b - a for a, b in zip(ticks, ticks[1:]) if b > a), default=1.0)
        axis.set_major_formatter(formatter(f"%.{max(1, math.ceil(-math.log10(step)))}f"))
    ax.tick_params(axis="x", labelrotation=30)


def _search_accuracy_label(kind: str) -> str:
    from ..evaluators import KINDS

    label = KINDS[kind].accuracy_label if kind in KINDS else kind
    return f"search accuracy\n({label})"


def _pareto_verified(plt, path: Path, arms: list, s: dict[str, Any]) -> None:
    """Left: the evaluator's accuracy of every candidate; right: verified accuracy (trained from scratch)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, sharex=True)
    for name, stage, color in arms:
        if not stage:
            continue
        ok = results.ok_rows(stage["rows"])
        front = results.pareto_front(ok)
        left.scatter([r["macs"] / 1e6 for r in ok], [r["accuracy"] for r in ok], s=6, alpha=0.3, color=color,
                     label=f"{name} candidates")
        left.plot([r["macs"] / 1e6 for r in front], [r["accuracy"] for r in front], "-", color=color,
                  label=f"{name} front")
    for t in s["table"]:
        if not t["reward"] or not t.get("macs"):
            continue
        arm = "reference" if "reference" in t["roles"] else t["roles"][0].split(" ")[0]
        color, marker = {"search": ("C0", "*"), "baseline": ("C1", "D"), "reference": ("k", "X")}[arm]
        acc = t["verified_accuracy"]
        right.errorbar([t["macs"] / 1e6], [acc["mean"]], yerr=[[acc["mean"] - acc["min"]], [acc["max"] - acc["mean"]]],
                       fmt=marker, markersize=9, color=color, markeredgecolor="k", capsize=3,
                       label=f"{arm} top-k" if arm != "reference" else t.get("name", "reference"))
    left.set_title("during the search", fontsize=10)
    right.set_title("verified: trained from scratch, mean and min-max over seeds", fontsize=10)
    _finish(plt, fig, left, None, "MACs of the target model (M)", _search_accuracy_label(s.get("evaluator", "")),
            legend_size=7)
    _finish(plt, fig, right, path, "MACs of the target model (M)",
            "verified accuracy\n(trained standalone, proxy recipe)", legend_size=7)


def _verified_vs_search(plt, path: Path, table: list[dict]) -> None:
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for t in table:
        if not t["reward"]:
            continue
        for role in t["roles"]:
            arm = role.split(" ")[0]
            if arm not in t["search_reward"]:
                continue
            r = t["reward"]
            ax.errorbar([t["search_reward"][arm]], [r["mean"]], yerr=[[r["mean"] - r["min"]], [r["max"] - r["mean"]]],
                        fmt="*" if arm == "search" else "D", color="C0" if arm == "search" else "C1", capsize=3,
                        label=arm)
    _readable_ticks(ax, MaxNLocator, FormatStrFormatter)
    _finish(plt, fig, ax, path, "search reward (the evaluator's score)",
            "verified reward (trained; mean, min-max over seeds)")
