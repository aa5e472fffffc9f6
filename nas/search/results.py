"""Run-dir outputs of a search, written so that a crash loses nothing already finished.

* ``trials.jsonl``: one JSON line per finished trial, appended and fsync'ed as
  each trial ends (the source of truth; a resumed run skips trial ids already
  there);
* ``best.yaml``: the best genotype (TF block strings, timm string) with its
  reward, accuracy, MACs and params;
* ``pareto.csv`` / ``pareto.png``: the front of held-out accuracy against MACs;
* ``config.yaml``: the resolved experiment (written by the driver).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from search_spaces import GRAMMAR_VERSION, Genotype, convert_legacy, resolve_genotype

from ..experiment.run_dir import CONFIG, TRIALS
from ..files import atomic_open, atomic_write

logger = logging.getLogger(__name__)
GRAMMAR_KEY = "grammar"  # genotype string grammar of a row / best.yaml; absent: grammar 1 (c1 = regular conv)

BEST = "best.yaml"
PARETO_CSV = "pareto.csv"
PARETO_PNG = "pareto.png"

#: Statuses of trials that trained (to their end or until a scheduler stopped them) and have an accuracy.
FINISHED = ("ok", "stopped")


def append_trial(run_dir: Path, row: dict[str, Any]) -> None:
    """Append one trial row and make it durable before returning (:func:`append_trials`)."""
    append_trials(run_dir, [row])


def append_trials(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Append trial rows and make them durable before returning: one write, one fsync.

    A torn last line (a crash mid-write) is ended first, so the new rows start a line of their own.
    """
    path = Path(run_dir) / TRIALS
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({**row, GRAMMAR_KEY: GRAMMAR_VERSION}, sort_keys=True) + "\n" for row in rows)
    with open(path, "ab+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                text = "\n" + text
        f.write(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_trials(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``trials.jsonl``, first record of each trial id kept; a torn line is skipped with a warning."""
    path = Path(run_dir) / TRIALS
    if not path.is_file():
        return []
    rows, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s line %d is not a whole trial row (a crash mid-write?); skipped", path, number)
            continue
        if not isinstance(row, dict):
            logger.warning("%s line %d is not a trial row; skipped", path, number)
            continue
        if row.get("trial_id") in seen:
            continue
        seen.add(row.get("trial_id"))
        rows.append(upgrade_row(row, path))
    return rows


def upgrade_genotype(text: Any, grammar: Any, where: str) -> Any:
    """``text`` in this grammar: a string written before grammar 2 has its ``c1`` (regular conv) read as ``c2``."""
    if grammar is not None or not isinstance(text, (str, list)):
        return text
    new, changed = convert_legacy(text)
    if changed:
        logger.warning("%s: written before genotype grammar %d, where c1 meant MnasNet's regular conv (now c2; c1 is "
                    "TF's MBConvBlockWithoutDepthwise): read %d block(s) as c2. To convert the file, replace c1 by "
                    "c2 in its genotypes and add '%s: %d'", where, GRAMMAR_VERSION, changed, GRAMMAR_KEY,
                    GRAMMAR_VERSION)
        return new
    return text


def upgrade_row(row: dict[str, Any], path: Path) -> dict[str, Any]:
    if GRAMMAR_KEY in row or "genotype" not in row:
        return row
    return {**row, "genotype": upgrade_genotype(row["genotype"], None, f"{path} trial {row.get('trial_id')}"),
            GRAMMAR_KEY: GRAMMAR_VERSION}


def search_time(rows: list[dict]) -> float:
    """Search time spent so far (the ``search_s`` of the last recorded trial; downtime not counted)."""
    return max([float(r.get("search_s") or 0.0) for r in rows], default=0.0)


def read_trial_ids(run_dir: Path) -> set[str]:
    """Ids of the trials recorded in ``trials.jsonl``."""
    return {row["trial_id"] for row in read_trials(run_dir)}


def ok_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") in FINISHED and _finite(r.get("reward"))]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def best_row(rows: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    good = ok_rows(rows)
    return max(good, key=lambda r: r["reward"]) if good else None


def pareto_front(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials not dominated in (higher accuracy, fewer MACs), sorted by MACs."""
    good = sorted(ok_rows(rows), key=lambda r: (r["macs"], -r["accuracy"]))
    front, best_acc = [], -math.inf
    for row in good:
        if row["accuracy"] > best_acc:
            front.append(row)
            best_acc = row["accuracy"]
    return front


def load_run_genotype(path: str | Path) -> Genotype:
    """The best genotype of a search run: key ``genotype`` (a TF block string) of ``<run_dir>/best.yaml``.

    ``path`` may also be the YAML file itself.
    """
    path = Path(path)
    file = path / BEST if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: a run directory has {BEST} once a trial has finished; "
                                "pass a finished run's directory or a genotype")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{file} is not valid YAML: {str(err).splitlines()[0]}") from None
    text = data.get("genotype") if isinstance(data, dict) else None
    if not (isinstance(text, str) or (isinstance(text, list) and all(isinstance(t, str) for t in text))) \
            or not text:
        raise ValueError(f"{file}: key 'genotype' must be a TF block string such as "
                         f"'r1_k3_s11_e1_i32_o16_se0.25,...', got {text!r}")
    text = upgrade_genotype(text, data.get(GRAMMAR_KEY), str(file))
    try:
        return Genotype.from_string(text)
    except ValueError as err:
        raise ValueError(f"{file}: genotype: {err}") from None


def resolve_genotype_or_run(text: str) -> Genotype:
    """A genotype from a name or string, or the best genotype of a run directory (or its best.yaml)."""
    path = Path(text)
    if path.exists():
        return load_run_genotype(path)
    if "/" in text or text.endswith((".yaml", ".yml")):
        raise FileNotFoundError(f"no such run directory or file {text!r}; pass an existing run directory "
                                "or a genotype (b0, mnasnet-a1 or a block string)")
    return resolve_genotype(text)


def write_best(run_dir: Path, row: dict[str, Any], recommended: dict[str, Any] | None = None) -> None:
    """best.yaml: the best row; ``recommended``: the row of the controller's recommendation, recorded under
    key ``recommended`` (the same trial unless the controller recommends by a model, e.g. bayes's
    ``recommend: auto`` under a noisy evaluator)."""
    genotype = Genotype.from_string(row["genotype"])
    try:
        timm = genotype.to_timm()
    except ValueError as err:  # not every genotype has a timm form; say why instead
        timm = f"not expressible: {err}"
    doc = {"genotype": row["genotype"], GRAMMAR_KEY: GRAMMAR_VERSION, "blocks": genotype.to_strings(), "timm": timm,
           "reward": row["reward"], "accuracy": row["accuracy"], "macs": row["macs"], "params": row["params"],
           "cost": row.get("cost"), "trial_id": row["trial_id"]}
    if recommended is not None:
        doc["recommended"] = {k: recommended.get(k) for k in ("trial_id", "genotype", "reward", "accuracy", "macs")}
    atomic_write(Path(run_dir) / BEST, yaml.safe_dump(doc, sort_keys=False))


def read_recommended(run_dir: Path) -> dict[str, Any] | None:
    """The controller's recommendation recorded in best.yaml (``recommended``: trial_id, genotype, ...), or None."""
    file = Path(run_dir) / BEST
    doc = yaml.safe_load(file.read_text(encoding="utf-8")) if file.is_file() else None
    found = doc.get("recommended") if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else None


def write_pareto(run_dir: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    front = pareto_front(rows)
    with atomic_open(Path(run_dir) / PARETO_CSV, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["trial_id", "accuracy", "macs", "params", "reward", "genotype"],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(front)
    _plot_pareto(Path(run_dir) / PARETO_PNG, ok_rows(rows), front)
    return front


def _plot_pareto(path: Path, rows: list[dict[str, Any]], front: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.scatter([r["macs"] / 1e6 for r in rows], [r["accuracy"] for r in rows], s=14, alpha=0.5, label="trials")
    ax.plot([r["macs"] / 1e6 for r in front], [r["accuracy"] for r in front], "o-", color="C3", label="Pareto front")
    ax.set_xlabel("MACs of the target model (M)")
    ax.set_ylabel("proxy held-out accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_summary(run_dir: Path, recommended: str | None = None) -> dict[str, Any]:
    """best.yaml and the Pareto files from trials.jsonl; returns counts, the best row and the row of
    ``recommended`` (the controller's recommendation, a genotype string; None when it has none or it is not
    among the finished rows)."""
    rows = read_trials(run_dir)
    best = best_row(rows)
    chosen = max((r for r in ok_rows(rows) if r.get("genotype") == recommended), key=lambda r: r["reward"],
                 default=None) if recommended is not None else None
    if best is not None:
        write_best(run_dir, best, chosen)
    front = write_pareto(run_dir, rows) if ok_rows(rows) else []
    failed = sum(1 for r in rows if r.get("status") == "failed")
    return {"trials": len(rows), "failed": failed, "best": best, "recommended": chosen, "pareto": front}

