"""The experiment: one typed, strict config for a whole search.

An experiment YAML has the sections below (every one optional, each owned by
the dataclass of the component that uses it).  Loading rejects unknown keys
and wrong types naming the YAML path; ``--set a.b=value`` overrides are
applied before validation; semantic checks (known space and controller,
controller settings, files that must exist, a feasible cost constraint) run
before Ray starts, so a config mistake never costs a cluster start-up.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from controllers import get_controller_class, make_controller
from controllers.constraint import Constraint
from efficientnet.compound import CompoundCoefficients
from search_spaces import get_space

from .config import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from .cost.base import build_cost_model
from .cost.target import TargetModel
from .proxy.config import ProxyConfig
from .proxy.data import DataConfig
from .search import results
from .search.evaluator import EvaluatorConfig, VerifyConfig
from .search.objective import ObjectiveConfig

#: The file Ray Tune keeps a restorable Tuner's state in (``ray.tune.impl.tuner_internal._TUNER_PKL``).
TUNER_STATE = "tuner.pkl"


@dataclass(frozen=True)
class ControllerConfig:
    """Which controller, its seed and settings, and an optional cost constraint.

    ``cost_min``/``cost_max`` bound the objective's cost (MACs, params or ms on the
    target model); proposals outside are rejected by sampling, at most ``max_tries``.
    """

    name: str = "evolution"
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    cost_min: float | None = None
    cost_max: float | None = None
    max_tries: int = 1000


@dataclass(frozen=True)
class BudgetConfig:
    samples: int = 20            # trials in total (distinct asks), resumed runs included
    time_limit_s: float | None = None


@dataclass(frozen=True)
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # a fraction packs several trials on one GPU (0.25 = 4 per GPU)
    max_concurrent: int = 2
    num_cpus: int | None = None  # the local Ray only: CPUs it may use (default: all)
    num_gpus: int | None = None  # the local Ray only: GPUs it may use (default: all)


@dataclass(frozen=True)
class SchedulerConfig:
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: int = 1        # ASHA: epochs every trial runs before it can be stopped
    reduction_factor: float = 3.0


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs"            # local folder of the run dir (results, TensorBoard)
    name: str = "search"         # run dir = <dir>/<name>
    storage: str | None = None   # Ray Tune storage (local dir, NFS path or s3://, gs:// URI); default: dir


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None   # an existing cluster ('auto' on a head node); default: start a local Ray
    dashboard: bool = False      # the local Ray's dashboard, bound to 127.0.0.1
    max_failures: int = 0        # retries of a trial whose worker died (a raising trial is not retried)
    reuse_actors: bool = True    # long-lived workers: no process start per trial


@dataclass(frozen=True)
class Experiment:
    description: str = ""
    space: str = "mnasnet"
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    target: TargetModel = field(default_factory=TargetModel)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    #: What scores a candidate (``proxy`` training or a ``supernet`` checkpoint), the equal-budget
    #: baseline run beside the search (``random`` or ``none``) and the verification of both.
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    baseline: Literal["random", "none"] = "random"
    verify: VerifyConfig = field(default_factory=VerifyConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output.dir).expanduser().resolve() / self.output.name

    @property
    def storage(self) -> str:
        """Where Ray Tune keeps the run (``output.storage``, default the run dir's folder)."""
        return self.output.storage or str(self.run_dir.parent)

    @property
    def tune_path(self) -> str:
        """Ray Tune's experiment folder of this run: ``<storage>/<output.name>``."""
        return f"{self.storage.rstrip('/')}/{self.output.name}"

    def to_dict(self) -> dict:
        return to_dict(self)


def load_experiment(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                    data: dict | None = None) -> Experiment:
    """Read, override, type-check and semantically check an experiment."""
    raw = load_yaml(path) if path is not None else dict(data or {})
    apply_overrides(raw, overrides)
    experiment = absolute_paths(from_dict(Experiment, raw))
    check_experiment(experiment)
    return experiment


def absolute_paths(exp: Experiment) -> Experiment:
    """Relative file paths made absolute (from the current directory): Ray runs trials in their own folders."""
    def fix(value: str | None) -> str | None:
        return str(Path(value).expanduser().resolve()) if value and "://" not in value else value

    objective = dataclasses.replace(exp.objective, latency_table=fix(exp.objective.latency_table))
    data = dataclasses.replace(exp.data, path=fix(exp.data.path))
    output = dataclasses.replace(exp.output, dir=fix(exp.output.dir), storage=fix(exp.output.storage))
    evaluator = dataclasses.replace(exp.evaluator, checkpoint=fix(exp.evaluator.checkpoint))
    return dataclasses.replace(exp, objective=objective, data=data, output=output, evaluator=evaluator)


def _positive(value: float, where: str, integer: bool = False, allow_zero: bool = False) -> None:
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{where}: must be {kind} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def check_experiment(exp: Experiment) -> None:
    """Checks that need more than types; raise ConfigError naming the field and the fix."""
    try:
        space = get_space(exp.space)
    except ValueError as err:
        raise ConfigError(f"space: {err}") from None
    try:
        cls = get_controller_class(exp.controller.name)
    except ValueError as err:
        raise ConfigError(f"controller.name: {err}") from None
    from_dict(cls.settings_cls, exp.controller.settings, "controller.settings")
    _positive(exp.budget.samples, "budget.samples", integer=True)
    if exp.budget.time_limit_s is not None:
        _positive(exp.budget.time_limit_s, "budget.time_limit_s")
    r = exp.resources
    _positive(r.cpus_per_trial, "resources.cpus_per_trial", allow_zero=r.gpus_per_trial > 0)
    _positive(r.gpus_per_trial, "resources.gpus_per_trial", allow_zero=True)
    _positive(r.max_concurrent, "resources.max_concurrent", integer=True)
    if r.gpus_per_trial > 1 and r.gpus_per_trial != int(r.gpus_per_trial):
        raise ConfigError(f"resources.gpus_per_trial: above 1 it must be a whole number, got {r.gpus_per_trial}")
    if exp.scheduler.name == "asha":
        _positive(exp.scheduler.grace_period, "scheduler.grace_period", integer=True)
        if exp.scheduler.reduction_factor <= 1:
            raise ConfigError(f"scheduler.reduction_factor: must be > 1, got {exp.scheduler.reduction_factor}")
    if exp.objective.cost == "latency":
        table = Path(exp.objective.latency_table).expanduser()
        if not table.is_file():
            raise ConfigError(f"objective.latency_table: {str(table)!r} does not exist; make it with "
                              "`nas profile --target cpu --out FILE` or fix the path")
    if exp.data.kind != "builtin":  # DataConfig itself requires the path
        if not Path(exp.data.path).expanduser().exists():
            raise ConfigError(f"data.path: {exp.data.path!r} does not exist; fix the path "
                              f"(data.kind {exp.data.kind!r})")
    check_verification(exp)
    c = exp.controller
    if c.cost_min is not None and c.cost_max is not None and c.cost_min > c.cost_max:
        raise ConfigError(f"controller: cost_min <= cost_max must hold, got ({c.cost_min}, {c.cost_max})")
    if c.cost_min is not None or c.cost_max is not None:
        check_feasible(exp, space)


def check_verification(exp: Experiment) -> None:
    """``evaluator``, ``baseline`` and ``verify``: valid values, and a supernet that fits the experiment."""
    exp.evaluator.check()
    exp.verify.check()
    if exp.evaluator.kind != "supernet":
        return
    from .supernet.checkpoint import read_checkpoint

    try:
        meta = read_checkpoint(exp.evaluator.checkpoint)["meta"]
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"evaluator.checkpoint: {err}") from None
    if meta.get("space") != exp.space:
        raise ConfigError(f"evaluator.checkpoint: the supernet is of space {meta.get('space')!r}, the experiment "
                          f"searches {exp.space!r}; set space: {meta.get('space')} or train a supernet of {exp.space}")
    trained_on = from_dict(DataConfig, meta["data"], "checkpoint data")
    if trained_on != exp.data:
        raise ConfigError(f"data: the supernet was trained on {to_dict(trained_on)}, the experiment has "
                          f"{to_dict(exp.data)}; use the supernet's data section (its held-out images are the "
                          "ones it never trained on)")


def check_run_dir(exp: Experiment, resume: bool) -> None:
    """A new run needs an unused run dir; ``--resume`` needs Ray Tune's saved state (checked here for local storage)."""
    if resume and "://" not in exp.tune_path and not (Path(exp.tune_path) / TUNER_STATE).is_file():
        raise FileNotFoundError(f"--resume: no search state at {exp.tune_path!r}; run without --resume to start it")
    if not resume and (exp.run_dir / results.TRIALS).exists():
        raise ConfigError(f"output: run dir {str(exp.run_dir)!r} already holds a search; pass --resume to continue "
                          "it or set output.name to start a new one")


def scale_model(model, c: CompoundCoefficients):
    """A proxy config or target model scaled by a grid candidate (``CompoundCoefficients.scale``)."""
    return dataclasses.replace(model, **c.scale(model.width, model.depth, model.resolution))


def scaled_experiment(exp: Experiment, c: CompoundCoefficients) -> Experiment:
    """EfficientNet's step-1 candidate: proxy AND target scaled by (alpha, beta, gamma)."""
    return dataclasses.replace(exp, proxy=scale_model(exp.proxy, c), target=scale_model(exp.target, c))


def build_controller(exp: Experiment):
    """The controller the experiment asks for, with its seed, settings and cost constraint."""
    c = exp.controller
    constraint = None
    if c.cost_min is not None or c.cost_max is not None:
        constraint = Constraint(cost=cost_function(exp), lo=-math.inf if c.cost_min is None else c.cost_min,
                                hi=math.inf if c.cost_max is None else c.cost_max, max_tries=c.max_tries,
                                unit=exp.objective.cost)
    settings = from_dict(get_controller_class(c.name).settings_cls, c.settings, "controller.settings")
    return make_controller(c.name, get_space(exp.space), seed=c.seed, constraint=constraint, settings=settings)


def cost_function(exp: Experiment):
    """The objective's cost on the target model, as a plain callable (for constraints)."""
    return build_cost_model(exp.objective.cost, exp.target, exp.objective.latency_table).cost


def check_feasible(exp: Experiment, space=None) -> None:
    """Sample the space (bounded) and fail early if no genotype meets the cost bounds."""
    space = space or get_space(exp.space)
    c = exp.controller
    lo = -math.inf if c.cost_min is None else c.cost_min
    hi = math.inf if c.cost_max is None else c.cost_max
    cost = cost_function(exp)
    rng = np.random.default_rng(c.seed)
    closest, gap = None, math.inf
    for _ in range(c.max_tries):
        value = cost(space.sample(rng))
        if lo <= value <= hi:
            return
        d = lo - value if value < lo else value - hi
        if d < gap:
            closest, gap = value, d
    raise ConfigError(f"controller: no genotype of space {exp.space!r} has {exp.objective.cost} in "
                      f"[{c.cost_min}, {c.cost_max}] after {c.max_tries} samples (closest: {closest:.6g}); "
                      "widen cost_min/cost_max or raise max_tries")


def resolved_yaml(exp: Experiment) -> str:
    import yaml

    return yaml.safe_dump(exp.to_dict(), sort_keys=False)


__all__ = ["BudgetConfig", "check_verification", "ControllerConfig", "Experiment", "OutputConfig", "RayConfig", "ResourcesConfig",
           "SchedulerConfig", "build_controller", "check_experiment", "check_run_dir", "cost_function",
           "load_experiment", "resolved_yaml", "scale_model", "scaled_experiment"]

