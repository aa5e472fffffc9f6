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

from .cluster import DEFAULT_CONNECT_TIMEOUT_S, check_address, host_port
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
    time_limit_s: float | None = None  # search time in total, resumed sessions included (downtime not counted)
    stop_after_failures: int = 3  # stop when a session's first this many trials all fail for one reason (0: never)


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
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S  # how long joining ``address`` may take before it fails
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
    _positive(exp.budget.stop_after_failures, "budget.stop_after_failures", integer=True, allow_zero=True)
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
    if exp.ray.dashboard:
        check_dashboard_packages()
    _positive(exp.ray.connect_timeout_s, "ray.connect_timeout_s")
    if exp.ray.address:
        host_port(exp.ray.address)
    check_verification(exp)
    c = exp.controller
    if c.max_tries <= 0:
        raise ConfigError(f"controller.max_tries: must be an integer > 0, got {c.max_tries!r}")
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


#: What Ray's dashboard imports (``ray.dashboard.optional_deps``; installed by ``ray[default]``).
DASHBOARD_PACKAGES = ("aiohttp", "aiohttp_cors", "opencensus", "prometheus_client")


def check_dashboard_packages() -> None:
    import importlib.util

    missing = [m for m in DASHBOARD_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"ray.dashboard: true needs the dashboard packages (missing: {', '.join(missing)}); "
                          "pip install 'ray[default]' or set ray.dashboard: false")


def check_inputs(exp: Experiment, address: str | None = None) -> None:
    """What every trial would read, read once here (seconds): the data, the latency table, the device.

    A mistake here would otherwise fail every trial inside Ray and burn the budget.  The image-folder
    kind is only checked to exist (reading it is the slow part of a trial).
    """
    if exp.objective.cost == "latency":
        try:
            cost_function(exp)
        except (ValueError, OSError, KeyError) as err:
            raise ConfigError(f"objective.latency_table: {exp.objective.latency_table!r} does not load ({err}); "
                              "rebuild it with `nas profile --target cpu --out FILE`") from None
    if str(exp.proxy.device).startswith("cuda"):
        if exp.resources.gpus_per_trial <= 0:
            raise ConfigError("proxy.device: cuda needs a GPU per trial; set resources.gpus_per_trial (e.g. 1 or "
                              "0.25) or proxy.device: auto")
        if not (address or exp.ray.address):
            import torch

            if not torch.cuda.is_available():
                raise ConfigError("proxy.device: cuda, but this machine has no CUDA GPU; set proxy.device: cpu "
                                  "(or auto), or join a GPU cluster with --address")
    if exp.data.kind != "imagefolder":  # last: it logs what it loaded
        from .proxy.data import load_data

        try:
            load_data(exp.data)
        except (ValueError, OSError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(text if text.startswith("data") else f"data: {text}") from None


def check_cluster(exp: Experiment, address: str | None) -> None:
    """``--address`` (or ``ray.address``) must answer within ``ray.connect_timeout_s``; nothing to check locally."""
    address = address or exp.ray.address
    if address:
        check_address(address, exp.ray.connect_timeout_s)


def check_run_dir(exp: Experiment, resume: bool) -> None:
    """A new run needs an unused, writable run dir; ``--resume`` needs a search there (Tune's state or trials).

    Creates the run dir (a probe file shows it is writable), so an unwritable output fails here, before Ray.
    """
    run_dir = exp.run_dir
    for folder in (run_dir.parent, run_dir):
        if folder.exists() and not folder.is_dir():
            key = "output.dir" if folder == run_dir.parent else "output.name"
            raise ConfigError(f"{key}: {str(folder)!r} is a file, not a folder; choose another {key}")
    if resume:
        local = "://" not in exp.tune_path
        if local and not (Path(exp.tune_path) / TUNER_STATE).is_file() and not (run_dir / results.TRIALS).is_file():
            raise FileNotFoundError(f"--resume: no search at {str(run_dir)!r} (neither Ray Tune's state nor "
                                    f"{results.TRIALS}); run without --resume to start it")
    elif (run_dir / results.TRIALS).exists():
        raise ConfigError(f"output: run dir {str(run_dir)!r} already holds a search; pass --resume to continue "
                          "it or set output.name to start a new one")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"output.dir: cannot write the run dir {str(run_dir)!r} ({err.strerror or err}); "
                          "choose a writable output.dir") from None


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


__all__ = ["BudgetConfig", "ControllerConfig", "Experiment", "OutputConfig", "RayConfig", "ResourcesConfig",
           "SchedulerConfig", "build_controller", "check_cluster", "check_experiment", "check_inputs", "check_run_dir",
           "check_verification", "cost_function",
           "load_experiment", "resolved_yaml", "scale_model", "scaled_experiment"]

