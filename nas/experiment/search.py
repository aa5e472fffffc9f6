"""The search experiment (``nas search``): one typed, strict config for a whole run.

An experiment YAML has the sections below (every one optional, each owned by the dataclass of the
component that uses it).  Loading (``nas.experiment.load``) rejects unknown keys, wrong types and
values out of range naming the YAML path; :meth:`Experiment.check` adds what needs several sections
(known space and controller, controller settings, files that must exist, a feasible cost
constraint) -- all before any slow work, so a config mistake never costs a Ray start-up.  What an
evaluator needs (a supernet checkpoint that fits, a device this machine has) is checked by the
evaluator (``nas.evaluators``) before the session starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..cluster import host_port
from ..config import ConfigError, from_dict, to_dict
from ..cost.objective import ObjectiveConfig
from ..cost.target import TargetModel
from ..data import DataConfig
from .proxy import ProxyConfig
from .run_dir import STAGES, TRIALS
from .sections import (BudgetConfig, ControllerConfig, EvaluatorConfig, OutputConfig, RayConfig, ResourcesConfig,
                       SchedulerConfig, VerifyConfig)
from .space import resolve_space

#: What Ray's dashboard imports (``ray.dashboard.optional_deps``; installed by ``ray[default]``).
DASHBOARD_PACKAGES = ("aiohttp", "aiohttp_cors", "opencensus", "prometheus_client")


@dataclass(frozen=True)
class Experiment:
    KIND: ClassVar[str] = "search"
    COMMAND: ClassVar[str] = "search"
    CONFIG_FILE: ClassVar[str] = "config.yaml"
    PATHS: ClassVar[tuple[str, ...]] = ("objective.latency_table", "data.path", "data.cache_dir", "output.dir",
                                        "output.storage", "evaluator.checkpoint")

    description: str = ""
    #: A shipped space name, a YAML declaration file (relative to the experiment file) or an inline
    #: declaration; loading turns a file or mapping into the declaration (``nas.experiment.space``).
    space: Any = "mnasnet"
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
        """Where Ray Tune writes its trial folders (``output.storage``, default the run dir's folder)."""
        return self.output.storage or str(self.run_dir.parent)

    @property
    def search_space(self):
        return resolve_space(self.space)

    def network_key(self, genotype) -> tuple:
        """The network the evaluator scores for ``genotype``: genotypes of one key are one candidate (the
        controllers' no-repeat rule).  At the proxy's scale for training and the supernet (depths that round
        alike are one network); the space's own canonical network for a table."""
        from search_spaces import network_key

        if self.evaluator.at_proxy_scale:
            return self.proxy.network_key(genotype)
        return network_key(genotype)  # what every space's ``canonical`` is, without resolving the space per call

    def to_dict(self) -> dict:
        return to_dict(self)

    @staticmethod
    def holds_run(run_dir: Path) -> bool:
        return (Path(run_dir) / TRIALS).is_file() or (Path(run_dir) / STAGES).is_file()

    def check(self) -> None:
        """Checks that need more than one section; ConfigError naming the field and the fix."""
        space = self.search_space
        _check_controller(self)
        if self.objective.cost == "latency":
            from ..files import path_problem

            problem = path_problem(self.objective.latency_table)
            if problem:
                raise ConfigError(f"objective.latency_table: {self.objective.latency_table!r} {problem}; make it "
                                  "with `nas profile --target cpu --out FILE` or fix the path")
            try:
                cost_function(self)
            except (ValueError, OSError, KeyError) as err:
                raise ConfigError(f"objective.latency_table: {self.objective.latency_table!r} does not load "
                                  f"({str(err).splitlines()[0] if str(err) else type(err).__name__}); rebuild it "
                                  "with `nas profile --target cpu --out FILE`") from None
        from .load import check_data_path

        check_data_path(self.data)
        if self.ray.dashboard:
            check_dashboard_packages()
        if self.ray.address:
            host_port(self.ray.address)
        c = self.controller
        if c.cost_min is not None or c.cost_max is not None:
            check_feasible(self, space)


def _check_controller(exp: Experiment) -> None:
    from controllers import get_controller_class

    try:
        cls = get_controller_class(exp.controller.name)
    except ValueError as err:
        raise ConfigError(f"controller.name: {err}") from None
    from_dict(cls.settings_cls, exp.controller.settings, "controller.settings")


def check_cluster(exp: Experiment, address: str | None) -> None:
    """``--address`` (or ``ray.address``) must answer within ``ray.connect_timeout_s``; nothing to check locally."""
    from ..cluster import check_address

    address = address or exp.ray.address
    if address:
        check_address(address, exp.ray.connect_timeout_s)


def check_dashboard_packages() -> None:
    import importlib.util

    missing = [m for m in DASHBOARD_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"ray.dashboard: true needs the dashboard packages (missing: {', '.join(missing)}); "
                          "pip install 'ray[default]' or set ray.dashboard: false")


def load_experiment(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                    data: dict | None = None) -> Experiment:
    """Read, override, type-check and check a search experiment (``nas.experiment.load.load``)."""
    from .load import load

    return load(Experiment, path, overrides, data)


def scale_model(model, c):
    """A proxy config or target model scaled by a grid candidate (``CompoundCoefficients.scale``)."""
    return dataclasses.replace(model, **c.scale(model.width, model.depth, model.resolution))


def scaled_experiment(exp: Experiment, c) -> Experiment:
    """EfficientNet's step-1 candidate: proxy AND target scaled by (alpha, beta, gamma)."""
    return dataclasses.replace(exp, proxy=scale_model(exp.proxy, c), target=scale_model(exp.target, c))


#: The extras of a candidate that change how it is trained (``variant``): a verification seed, a grid triple.
SEED_KEY = "seed"
SCALE_KEYS = ("alpha", "beta", "gamma")


def variant(exp: Experiment, extra: dict) -> Experiment:
    """The experiment a candidate with ``extra`` is trained in: ``seed`` -> ``proxy.seed``; ``alpha``,
    ``beta``, ``gamma`` -> proxy and target scaled (``scaled_experiment``).  Other extras change nothing."""
    if extra.get(SEED_KEY) is not None:
        exp = dataclasses.replace(exp, proxy=dataclasses.replace(exp.proxy, seed=int(extra[SEED_KEY])))
    if all(k in extra for k in SCALE_KEYS):
        from efficientnet.compound import CompoundCoefficients

        exp = scaled_experiment(exp, CompoundCoefficients(*(float(extra[k]) for k in SCALE_KEYS)))
    return exp


def with_controller(exp: Experiment, name: str) -> Experiment:
    """``exp`` searched by another controller, same seed, no settings of its own (the random baseline)."""
    return dataclasses.replace(exp, controller=dataclasses.replace(exp.controller, name=name, settings={}))


def build_controller(exp: Experiment, noise: float | None = None):
    """The controller the experiment asks for, with its seed, settings and cost constraint; ``noise``: the
    evaluator's known noise (``EvaluatorInfo.known_noise``), a hint to the controller."""
    from controllers import get_controller_class, make_controller
    from controllers.constraint import Constraint

    c = exp.controller
    constraint = None
    if c.cost_min is not None or c.cost_max is not None:
        constraint = Constraint(cost=cost_function(exp), lo=-math.inf if c.cost_min is None else c.cost_min,
                                hi=math.inf if c.cost_max is None else c.cost_max, max_tries=c.max_tries,
                                unit=exp.objective.cost)
    settings = from_dict(get_controller_class(c.name).settings_cls, c.settings, "controller.settings")
    return make_controller(c.name, exp.search_space, seed=c.seed, constraint=constraint, settings=settings,
                           key=exp.network_key, budget=exp.budget.samples, noise=noise)


def cost_function(exp: Experiment):
    """The objective's cost on the target model, as a plain callable (for constraints)."""
    from ..cost.base import build_cost_model

    return build_cost_model(exp.objective.cost, exp.target, exp.objective.latency_table).cost


def check_feasible(exp: Experiment, space: Any = None) -> None:
    """Sample the space (bounded) and fail early if no genotype meets the cost bounds."""
    space = space or exp.search_space
    c = exp.controller
    lo = -math.inf if c.cost_min is None else c.cost_min
    hi = math.inf if c.cost_max is None else c.cost_max
    try:
        cost = cost_function(exp)
    except (ValueError, OSError, KeyError) as err:
        raise ConfigError(f"objective: the cost model does not load ({str(err).splitlines()[0]}); fix "
                          "objective.latency_table or rebuild it with `nas profile --target cpu --out FILE`") from None
    rng = np.random.default_rng(c.seed)
    closest, gap = None, math.inf
    for _ in range(c.max_tries):
        value = cost(space.sample(rng))
        if lo <= value <= hi:
            return
        d = lo - value if value < lo else value - hi
        if d < gap:
            closest, gap = value, d
    raise ConfigError(f"controller: no genotype of space {space.name!r} has {exp.objective.cost} in "
                      f"[{c.cost_min}, {c.cost_max}] after {c.max_tries} samples (closest: {closest:.6g}); "
                      "widen cost_min/cost_max or raise max_tries")


__all__ = ["DASHBOARD_PACKAGES", "Experiment", "build_controller", "check_cluster", "check_dashboard_packages", "check_feasible",
           "cost_function", "load_experiment", "scale_model", "scaled_experiment", "variant", "with_controller"]
