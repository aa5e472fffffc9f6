"""EfficientNet's step 1: the compound-coefficient grid search, run through Ray Tune.

Tan & Le 2019 (arXiv:1905.11946) section 3.3: "STEP 1: we first fix phi = 1,
assuming twice more resources available, and do a small grid search of
alpha, beta, gamma based on Equation 2 and 3" -- every triple with
``alpha * beta**2 * gamma**2 ~= 2`` (here: within ``tolerance`` of ``target``)
scales the baseline to depth x alpha, width x beta, resolution x gamma, is
trained on the proxy task, and the best one (``metric``, higher is better)
fixes the family of step 2 (``efficientnet.compound.compound_family``).

An experiment YAML with one more top-level section, ``grid`` (this module's
:class:`ScaleGridConfig`); every other section is an ordinary search experiment
(``nas.experiment.search``).  The candidates are one search session
(``nas.search.session``) over the fixed list of triples, each a Ray Tune trial
(parallel, resumable, progress with ETA, the same interrupt path as ``nas search``);
proxy AND target are scaled in the trial (``nas.experiment.search.variant``).
Outputs in the run dir, next to the driver's ``trials.jsonl`` and
``config.yaml``:

* ``grid.yaml`` -- the resolved grid section (genotype as a block string,
  explicit axis values), what ``--resume RUN_DIR`` reads back;
* ``scale_grid.csv`` -- every candidate: triple, factor, accuracy, reward,
  target MACs/params, MACs relative to the baseline, status;
* ``scale_choice.yaml`` -- the chosen triple and the family b0..b``max_phi``
  it implies (width, depth, resolution, dropout, params, MACs).

No Ray import here: ``nas.ray`` is imported when the search runs.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from efficientnet.compound import (DEFAULT_MAX_PHI, FLOPS_TARGET, GRID_HIGH, GRID_LOW, GRID_STEP,
                                   CompoundCoefficients, FamilyMember, compound_family, family_table, grid_values,
                                   scale_grid, select_coefficients)
from efficientnet.scaling import Coefficients
from search_spaces import Genotype

from ..config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from ..cost.target import TargetModel
from ..experiment.load import load, prepare_run_dir
from ..experiment.search import Experiment, scale_model, scaled_experiment
from ..files import atomic_open, atomic_write
from . import results

logger = logging.getLogger(__name__)

#: The top-level YAML key of the grid section.
GRID_KEY = "grid"
GRID_FILE = "grid.yaml"
CANDIDATES_CSV = "scale_grid.csv"
CHOICE_YAML = "scale_choice.yaml"
CSV_COLUMNS = ("alpha", "beta", "gamma", "factor", "accuracy", "reward", "macs", "params", "macs_ratio",
               "status", "trial_id")
#: Largest phi of the implied family: 1.2 ** 20 is already a 38x deeper network.
MAX_PHI_LIMIT = 20


@dataclass(frozen=True)
class GridRange:
    """An axis as ``low, low + step, ..., high`` (inclusive; ``efficientnet.compound.grid_values``)."""

    low: float = GRID_LOW
    high: float = GRID_HIGH
    step: float = GRID_STEP

    def values(self) -> tuple[float, ...]:
        return grid_values(self.low, self.high, self.step)


def _default_axis() -> dict[str, float]:
    return dataclasses.asdict(GridRange())


@dataclass(frozen=True)
class ScaleGridConfig:
    """YAML section ``grid``: the baseline, the (alpha, beta, gamma) grid, the constraint and the pick.

    Each axis is a list of values or a mapping ``{low, high, step}``; after loading
    it is the tuple of its values.  ``genotype`` is a name (b0, mnasnet-a1), a TF
    block or timm string, or a finished search's run dir (its ``best.yaml``).
    ``base_resolution`` is the phi = 0 resolution of the implied family (default:
    the target model's resolution).
    """

    genotype: str = "b0"
    alphas: list[float] | dict[str, float] = field(default_factory=_default_axis)
    betas: list[float] | dict[str, float] = field(default_factory=_default_axis)
    gammas: list[float] | dict[str, float] = field(default_factory=_default_axis)
    tolerance: float = 0.1
    target: float = FLOPS_TARGET
    metric: Literal["accuracy", "reward"] = "accuracy"
    max_phi: int = DEFAULT_MAX_PHI
    base_resolution: int | None = None

    def __post_init__(self) -> None:
        for name in ("alphas", "betas", "gammas"):
            object.__setattr__(self, name, _axis(getattr(self, name), f"{GRID_KEY}.{name}"))
        if self.metric not in ("accuracy", "reward"):
            raise ConfigError(f"{GRID_KEY}.metric: {self.metric!r} is not allowed; choose 'accuracy' or 'reward'")
        _finite(self.tolerance, "tolerance", self.tolerance >= 0, ">= 0", "e.g. 0.1")
        _finite(self.target, "target", self.target > 1, "> 1", "EfficientNet uses 2 (FLOPs double per phi)")
        if not 0 <= self.max_phi <= MAX_PHI_LIMIT:
            raise ConfigError(f"{GRID_KEY}.max_phi: must be in [0, {MAX_PHI_LIMIT}], got {self.max_phi}; "
                              "EfficientNet stops at 7 (B7)")
        if self.base_resolution is not None and self.base_resolution < 8:
            raise ConfigError(f"{GRID_KEY}.base_resolution: must be >= 8 pixels, got {self.base_resolution}; "
                              "leave it out to use target.resolution")
        if not self.genotype.strip():
            raise ConfigError(f"{GRID_KEY}.genotype: empty; give b0, mnasnet-a1, a block string or a run dir")

    def triples(self) -> list[CompoundCoefficients]:
        """The candidates: every grid triple within ``tolerance`` of ``target`` (ValueError if none)."""
        try:
            return scale_grid(self.alphas, self.betas, self.gammas, self.tolerance, self.target)
        except ValueError as err:
            raise ConfigError(f"{GRID_KEY}: {err} (alphas {list(self.alphas)}, betas {list(self.betas)}, "
                              f"gammas {list(self.gammas)}, tolerance {self.tolerance})") from None

    def resolve_genotype(self) -> Genotype:
        try:
            return results.resolve_genotype_or_run(self.genotype)
        except (ValueError, FileNotFoundError) as err:
            raise ConfigError(f"{GRID_KEY}.genotype: {err}") from None


def _finite(value: float, name: str, ok: bool, rule: str, fix: str) -> None:
    if not (ok and math.isfinite(value)):
        raise ConfigError(f"{GRID_KEY}.{name}: must be a finite number {rule}, got {value!r}; {fix}")


def _axis(value: Any, path: str) -> tuple[float, ...]:
    """An axis as a sorted tuple of distinct values >= 1, from a list or a ``{low, high, step}`` mapping."""
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, dict):
        r = from_dict(GridRange, value, path)
        try:
            values = r.values()
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
    elif isinstance(value, list):
        values = tuple(value)
    else:
        raise ConfigError(f"{path}: expected a list of numbers or a mapping (low, high, step), got {value!r}")
    if not values:
        raise ConfigError(f"{path}: empty; give at least one value >= 1, e.g. [1.0, 1.1, 1.2]")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
            raise ConfigError(f"{path}: every value must be a finite number >= 1 (Tan & Le 2019, eq. 3), "
                              f"got {v!r}")
    return tuple(sorted({float(v) for v in values}))


# --- loading ------------------------------------------------------------------------------------------

def split_config(raw: dict) -> tuple[ScaleGridConfig, Experiment]:
    """The ``grid`` section and the experiment of an already-parsed (and overridden) YAML mapping."""
    raw = dict(raw)
    if GRID_KEY not in raw:
        raise ConfigError(f"{GRID_KEY}: required section missing; add a '{GRID_KEY}:' mapping (genotype, alphas, "
                          "betas, gammas, tolerance), see experiments/scale_grid.yaml")
    grid = from_dict(ScaleGridConfig, raw.pop(GRID_KEY), GRID_KEY)
    return grid, load(Experiment, data=raw)


def load_scale_search(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                      data: dict | None = None) -> tuple[ScaleGridConfig, Experiment]:
    """Read a grid-search YAML (or ``data``), apply ``--set`` overrides, check everything Ray does not need.

    ``path`` may be a run dir: its ``config.yaml`` (the experiment) and ``grid.yaml``
    are read back, as ``--resume RUN_DIR`` does.  Every user mistake -- unknown
    keys, an empty grid, an unknown genotype, a candidate the proxy cannot be
    scaled to -- raises :class:`~nas.config.ConfigError` here, before Ray starts.
    """
    if path is not None and Path(path).is_dir():
        run_dir = Path(path)
        for name in (results.CONFIG, GRID_FILE):
            if not (run_dir / name).is_file():
                raise FileNotFoundError(f"{run_dir / name} not found: {str(run_dir)!r} is not a grid-search "
                                        "run dir; pass the grid-search YAML instead")
        raw = load_yaml(run_dir / results.CONFIG)
        raw[GRID_KEY] = load_yaml(run_dir / GRID_FILE)
    else:
        raw = load_yaml(path) if path is not None else dict(data or {})
    apply_overrides(raw, overrides)
    grid, experiment = split_config(raw)
    check_scale_search(grid, experiment)
    return grid, experiment


def check_scale_search(grid: ScaleGridConfig, experiment: Experiment) -> list[CompoundCoefficients]:
    """The candidates, after checking the genotype and that every one scales to a valid proxy and target."""
    triples = grid.triples()
    genotype = grid.resolve_genotype()
    for c in triples:
        try:
            scaled_experiment(experiment, c).target.counts(genotype)
        except ValueError as err:
            raise ConfigError(f"{GRID_KEY}: candidate {c.as_dict()} cannot be built: {err}; shrink the grid or "
                              "the base proxy") from None
    return triples


# --- the search --------------------------------------------------------------------------------------

def candidate_target(target: TargetModel, c: CompoundCoefficients) -> TargetModel:
    """The target model of a candidate, scaled as its trial scales it (``nas.experiment.scale_model``)."""
    return scale_model(target, c)


@dataclass
class ScaleSearchOutcome:
    """What step 1 found: every candidate, the choice (None if no trial succeeded) and its family."""

    run_dir: Path
    genotype: str
    candidates: list[dict[str, Any]]
    choice: dict[str, Any] | None
    family: list[dict[str, Any]]
    trials: int
    failed: int


def run_scale_search(grid: ScaleGridConfig, experiment: Experiment, resume: bool = False,
                     address: str | None = None, progress: Callable[[str], None] | None = None,
                     trial_fn: Callable | None = None) -> ScaleSearchOutcome:
    """Train every candidate through Ray Tune, pick the best triple, write the table and the family.

    ``resume=True`` continues an interrupted run (finished candidates are kept); the
    grid must be the one the run started with.  ``trial_fn`` replaces the proxy
    trial (``nas.ray.tune.TrialFn``), for tests.
    """
    triples = check_scale_search(grid, experiment)
    genotype = grid.resolve_genotype()
    largest = max(scale_model(experiment.proxy, c).resolution for c in triples)
    if experiment.data.kind == "imagefolder" and experiment.data.image_size < largest:
        logger.warning("data.image_size %d < %d px, the largest candidate resolution: those candidates see "
                       "up-scaled images; set data.image_size >= %d", experiment.data.image_size, largest, largest)
    grid = dataclasses.replace(grid, genotype=genotype.to_string())  # a run dir's best may change later
    run_dir = _prepare(grid, triples, experiment, resume)
    logger.info("grid search: %d candidates of %s -> %s", len(triples), grid.genotype, run_dir)
    _run_grid(experiment, genotype, triples, resume, address, progress, trial_fn)
    return summarize(grid, experiment, genotype, triples, run_dir)


def _prepare(grid: ScaleGridConfig, triples: list[CompoundCoefficients], experiment: Experiment,
             resume: bool) -> Path:
    run_dir = experiment.run_dir
    saved = run_dir / GRID_FILE
    if resume and saved.is_file():
        before = from_dict(ScaleGridConfig, load_yaml(saved), GRID_KEY)
        if before.triples() != triples or before.genotype != grid.genotype:
            raise ConfigError(f"{GRID_KEY}: differs from the grid {str(run_dir)!r} was started with "
                              f"({len(before.triples())} candidates of {before.genotype}); resume with the "
                              "run dir itself or the original config")
    prepare_run_dir(experiment, resume)
    atomic_write(saved, yaml.safe_dump(to_dict(grid), sort_keys=False))
    return run_dir


def _run_grid(experiment: Experiment, genotype: Genotype, triples: list[CompoundCoefficients], resume: bool,
              address: str | None, progress: Callable[[str], None] | None, trial_fn: Callable | None) -> None:
    from ..experiment.load import write_config
    from ..ray.local import ray_session
    from ..ray.tune import pump_trials
    from .session import ListProposer, Session, run_pump

    write_config(experiment)
    items = [(genotype.to_string(), c.as_dict()) for c in triples]
    command = f"nas scale-search {experiment.run_dir} --resume"
    session = Session(experiment.run_dir, ListProposer(items), len(items), stage="scale-search", resume=resume,
                      stop_after_failures=experiment.budget.stop_after_failures, progress=progress, unit="trials",
                      command=command, every_result=True, save_every_s=0.0)
    r = experiment.resources
    with ray_session(address or experiment.ray.address, r.num_cpus, r.num_gpus, experiment.ray.dashboard,
                     experiment.ray.connect_timeout_s):
        run_pump(session, lambda s: pump_trials(s, experiment, trial_fn))


def summarize(grid: ScaleGridConfig, experiment: Experiment, genotype: Genotype,
              triples: list[CompoundCoefficients], run_dir: Path) -> ScaleSearchOutcome:
    """Candidate table and choice from ``trials.jsonl``; writes ``scale_grid.csv`` and ``scale_choice.yaml``."""
    rows = results.read_trials(run_dir)
    candidates = candidate_table(triples, rows, experiment.target, genotype)
    _write_csv(run_dir / CANDIDATES_CSV, candidates)
    base = grid.base_resolution or experiment.target.resolution
    good = [c for c in candidates if c["status"] in results.FINISHED]
    choice, family = None, []
    if good:
        picked = select_coefficients(good, grid.metric, grid.max_phi, base)
        choice = next(c for c in good if (c["alpha"], c["beta"], c["gamma"]) ==
                      (picked.coefficients.alpha, picked.coefficients.beta, picked.coefficients.gamma))
        family = implied_family(genotype, picked.coefficients, experiment.target, grid.max_phi, base)
    doc = {"genotype": grid.genotype, "metric": grid.metric,
           "constraint": {"target": grid.target, "tolerance": grid.tolerance,
                          "rule": "|alpha * beta^2 * gamma^2 - target| <= tolerance"},
           "candidates": len(candidates), "finished": len(good),
           "chosen": choice, "base": {"width": experiment.target.width, "depth": experiment.target.depth,
                                      "resolution": base, "num_classes": experiment.target.num_classes},
           "family": family}
    atomic_write(run_dir / CHOICE_YAML, yaml.safe_dump(doc, sort_keys=False))
    if choice is None:
        logger.warning("no grid candidate finished successfully; see %s", run_dir / results.TRIALS)
    return ScaleSearchOutcome(run_dir=run_dir, genotype=grid.genotype, candidates=candidates, choice=choice,
                              family=family, trials=len(rows),
                              failed=sum(r.get("status") == "failed" for r in rows))


def candidate_table(triples: list[CompoundCoefficients], rows: list[dict[str, Any]], target: TargetModel,
                    genotype: Genotype) -> list[dict[str, Any]]:
    """One row per candidate, in grid order; a candidate with no finished trial has status ``missing``.

    MACs and params are the trial's (target model); where a trial failed or is
    missing they are counted analytically, so the table is complete either way.
    """
    base_macs = target.counts(genotype)[1]
    by_triple: dict[tuple[float, float, float], dict[str, Any]] = {}
    for row in rows:
        if not all(k in row for k in ("alpha", "beta", "gamma")):
            continue
        key = (float(row["alpha"]), float(row["beta"]), float(row["gamma"]))
        if key not in by_triple or by_triple[key].get("status") != "ok":  # a resumed re-run may succeed
            by_triple[key] = row
    table = []
    for c in triples:
        row = by_triple.get((c.alpha, c.beta, c.gamma), {})
        status = row.get("status", "missing")
        params, macs = row.get("params"), row.get("macs")
        if status == "failed" or not macs:
            params, macs = candidate_target(target, c).counts(genotype)
        finished = status in results.FINISHED
        table.append({"alpha": c.alpha, "beta": c.beta, "gamma": c.gamma, "factor": round(c.flops_factor, 4),
                      "accuracy": row.get("accuracy") if finished else None,
                      "reward": row.get("reward") if finished else None,
                      "macs": int(macs), "params": int(params), "macs_ratio": round(macs / base_macs, 4),
                      "status": status, "trial_id": row.get("trial_id")})
    return table


def implied_family(genotype: Genotype, coefficients: CompoundCoefficients, target: TargetModel,
                   max_phi: int, base_resolution: int) -> list[dict[str, Any]]:
    """Rows b0..b``max_phi`` of step 2, relative to the target model's width and depth."""
    members = []
    for m in compound_family(coefficients, max_phi, base_resolution):
        c = m.coefficients
        members.append(FamilyMember(m.name, m.phi, Coefficients(width=round(target.width * c.width, 4),
                                                                 depth=round(target.depth * c.depth, 4),
                                                                 resolution=c.resolution, dropout=c.dropout)))
    return family_table(genotype, members, target.num_classes)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_open(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


__all__ = ["CANDIDATES_CSV", "CHOICE_YAML", "GRID_FILE", "GRID_KEY", "GridRange",
           "ScaleGridConfig", "ScaleSearchOutcome", "candidate_table", "candidate_target", "check_scale_search",
           "implied_family", "load_scale_search", "run_scale_search", "split_config", "summarize"]
