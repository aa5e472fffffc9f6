"""The run's report: ``report.md`` + three plots, and the summary ``nas results`` prints (files only, no Ray).

Plots (PNG, matplotlib Agg):

* ``best_so_far.png``: best search reward against candidates scored, search and baseline;
* ``pareto_verified.png``: accuracy against target MACs -- every candidate of the search and of the
  baseline (the evaluator's accuracy), their fronts, and the verified genotypes and the reference
  (b0) at their mean verified accuracy;
* ``verified_vs_search.png``: verified reward (mean, min-max over seeds) against search reward.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    return {"run_dir": run_dir, "stages": stages, "search": stage_summary(run_dir),
            "baseline": stage_summary(run_dir / BASELINE_DIR) if (run_dir / BASELINE_DIR).is_dir() else None,
            "table": table, "compare": compare(table)}


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
    if s["table"]:
        lines += comparison_lines(s["compare"])
    else:
        lines.append("verification: not run yet (no verified genotypes); no verified gain is claimed")
    return lines


def _md_table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    return head + "".join("| " + " | ".join(str(r[c]) for c in columns) + " |\n" for r in rows)


def write_report(run_dir: Path, header: str = "") -> dict[str, Any]:
    """``report.md`` and the plots in ``run_dir``; returns the summary."""
    s = summarize(run_dir)
    run_dir = Path(run_dir)
    _plots(run_dir, s)
    best = s["search"]["best"]
    text = ["# Search report", "", header, "", "## Summary", "", *[f"- {line}" for line in summary_lines(s)], "",
            "## Verification (standalone proxy training, per seed)", "",
            _md_table(table_rows(s["table"]), COLUMNS) if s["table"] else "Not run.", "",
            "Search reward: the evaluator's score during the search (supernet: inherited weights + BN "
            "recalibration; proxy: one short training).  Verified reward: the same genotype retrained from "
            "scratch with the proxy recipe, one run per seed.", "",
            "## Plots", "", *[f"![{p}]({p})" for p in PLOTS], ""]
    if best:
        text += ["## Best genotype of the search (by search reward)", "", f"`{best['genotype']}`", ""]
    atomic_write(run_dir / REPORT, "\n".join(text))
    return s


def _finish(plt, fig, ax, path: Path, xlabel: str, ylabel: str, legend_size: int | None = None) -> None:
    """Axis labels, grid, a legend with one entry per label (when there is any), save, close."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=legend_size)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plots(run_dir: Path, s: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [("search", s["search"], "C0"), ("baseline (random)", s["baseline"], "C1")]
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
    _finish(plt, fig, ax, run_dir / PLOTS[0], "candidates scored", "best search reward so far")

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, stage, color in arms:
        if not stage:
            continue
        ok = results.ok_rows(stage["rows"])
        front = results.pareto_front(ok)
        ax.scatter([r["macs"] / 1e6 for r in ok], [r["accuracy"] for r in ok], s=6, alpha=0.3, color=color,
                   label=f"{name} candidates")
        ax.plot([r["macs"] / 1e6 for r in front], [r["accuracy"] for r in front], "-", color=color)
    for t in s["table"]:
        if not t["reward"] or not t.get("macs"):
            continue
        arm = "reference" if "reference" in t["roles"] else t["roles"][0].split(" ")[0]
        style = {"search": ("C0", "*"), "baseline": ("C1", "D"), "reference": ("k", "X")}[arm]
        ax.scatter([t["macs"] / 1e6], [t["verified_accuracy"]["mean"]], s=90, color=style[0], marker=style[1],
                   edgecolor="k", zorder=3, label=f"{arm} verified" if arm != "reference" else
                   f"{t.get('name', 'reference')} verified")
    _finish(plt, fig, ax, run_dir / PLOTS[1], "MACs of the target model (M)", "held-out accuracy", legend_size=7)

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for t in s["table"]:
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
    _finish(plt, fig, ax, run_dir / PLOTS[2], "search reward (evaluator)", "verified reward (mean, min-max over seeds)")


__all__ = ["COLUMNS", "PLOTS", "REPORT", "summarize", "summary_lines", "table_rows", "write_report"]
