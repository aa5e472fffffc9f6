"""The YAML sections shared by the experiment kinds, each a frozen dataclass owning its defaults and ranges.

``output`` and ``ray`` belong to every kind (search, supernet, train); ``controller``, ``budget``,
``resources``, ``scheduler``, ``evaluator`` and ``verify`` to a search.  A value out of range raises
ValueError naming the YAML path, the value and the fix (``nas.config.from_dict`` turns it into a
:class:`~nas.config.ConfigError`); checks that need more than one section live with the kind.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..cluster import DEFAULT_CONNECT_TIMEOUT_S
from ..config import ConfigError

#: What a ``device`` setting may name (``auto``: a GPU when the process has one, else the CPU).
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def need(ok: bool, path: str, value: Any, rule: str, fix: str) -> None:
    """Raise ConfigError ``"<path> must be <rule>, got <value>; <fix>"`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{path} must be {rule}, got {value!r}; {fix}")


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_device_name(value: str, path: str) -> None:
    need(isinstance(value, str) and bool(DEVICE_PATTERN.fullmatch(value)), path, value,
         "auto, cpu, cuda or cuda:N", "e.g. auto")


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs"            # local folder of the run dir (results, TensorBoard)
    name: str = "search"         # run dir = <dir>/<name>
    storage: str | None = None   # Ray storage (local dir, NFS path or s3://, gs:// URI); default: dir

    def __post_init__(self) -> None:
        need(bool(self.name) and "/" not in self.name and self.name not in (".", ".."), "output.name", self.name,
             "a folder name (no '/')", "e.g. quickstart-1")
        need(bool(self.dir), "output.dir", self.dir, "a folder", "e.g. runs")


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None   # an existing cluster ('auto' on a head node); default: start a local Ray
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S  # how long joining ``address`` may take before it fails
    dashboard: bool = False      # the local Ray's dashboard, bound to 127.0.0.1
    max_failures: int = 0        # retries of a trial whose worker died (a raising trial is not retried)
    reuse_actors: bool = True    # long-lived workers: no process start per trial

    def __post_init__(self) -> None:
        need(finite(self.connect_timeout_s) and self.connect_timeout_s > 0, "ray.connect_timeout_s",
             self.connect_timeout_s, "a number of seconds > 0", "e.g. 30")
        need(self.max_failures >= 0, "ray.max_failures", self.max_failures, "an integer >= 0", "e.g. 0")


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

    def __post_init__(self) -> None:
        need(self.max_tries > 0, "controller.max_tries", self.max_tries, "an integer > 0", "e.g. 1000")
        for name in ("cost_min", "cost_max"):
            value = getattr(self, name)
            need(value is None or finite(value), f"controller.{name}", value, "a finite number or null",
                 "e.g. 4e8")
        if self.cost_min is not None and self.cost_max is not None and self.cost_min > self.cost_max:
            raise ConfigError(f"controller: cost_min <= cost_max must hold, got ({self.cost_min}, {self.cost_max})")


@dataclass(frozen=True)
class BudgetConfig:
    samples: int = 20            # trials in total (distinct asks), resumed runs included
    time_limit_s: float | None = None  # search time in total, resumed sessions included (downtime not counted)
    stop_after_failures: int = 3  # stop when a session's first this many trials all fail for one reason (0: never)

    def __post_init__(self) -> None:
        need(self.samples >= 1, "budget.samples", self.samples, "an integer >= 1", "e.g. 40")
        need(self.time_limit_s is None or (finite(self.time_limit_s) and self.time_limit_s > 0),
             "budget.time_limit_s", self.time_limit_s, "a number of seconds > 0 or null", "e.g. 3600")
        need(self.stop_after_failures >= 0, "budget.stop_after_failures", self.stop_after_failures,
             "an integer >= 0 (0: never stop)", "e.g. 3")


@dataclass(frozen=True)
class ResourcesConfig:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # a fraction packs several trials on one GPU (0.25 = 4 per GPU)
    max_concurrent: int = 2
    num_cpus: int | None = None  # the local Ray only: CPUs it may use (default: all)
    num_gpus: int | None = None  # the local Ray only: GPUs it may use (default: all)

    def __post_init__(self) -> None:
        need(finite(self.gpus_per_trial) and self.gpus_per_trial >= 0, "resources.gpus_per_trial",
             self.gpus_per_trial, "a number >= 0", "e.g. 0.25 (4 trials a GPU)")
        need(finite(self.cpus_per_trial) and (self.cpus_per_trial > 0 or self.gpus_per_trial > 0 and
                                             self.cpus_per_trial == 0), "resources.cpus_per_trial",
             self.cpus_per_trial, "a number > 0 (0 only with a GPU per trial)", "e.g. 1")
        need(self.gpus_per_trial <= 1 or self.gpus_per_trial == int(self.gpus_per_trial),
             "resources.gpus_per_trial", self.gpus_per_trial, "a fraction <= 1 or a whole number", "e.g. 1 or 0.5")
        need(self.max_concurrent >= 1, "resources.max_concurrent", self.max_concurrent, "an integer >= 1", "e.g. 2")
        for name in ("num_cpus", "num_gpus"):
            value = getattr(self, name)
            need(value is None or value >= (1 if name == "num_cpus" else 0), f"resources.{name}", value,
                 f"an integer >= {1 if name == 'num_cpus' else 0} or null (all)", "e.g. 2")


@dataclass(frozen=True)
class SchedulerConfig:
    name: Literal["fifo", "asha"] = "fifo"
    grace_period: int = 1        # ASHA: epochs every trial runs before it can be stopped
    reduction_factor: float = 3.0

    def __post_init__(self) -> None:
        need(self.grace_period >= 1, "scheduler.grace_period", self.grace_period, "an integer >= 1", "e.g. 1")
        need(finite(self.reduction_factor) and self.reduction_factor > 1, "scheduler.reduction_factor",
             self.reduction_factor, "a number > 1", "e.g. 3")


@dataclass(frozen=True)
class EvaluatorConfig:
    """YAML section ``evaluator``: what scores a candidate during the search (``nas.evaluators``).

    ``proxy`` trains each candidate (one Ray Tune trial each); ``supernet`` scores it with the
    trained supernet of ``checkpoint`` in ``workers`` long-lived workers (0: in the driver process,
    no Ray actors), ``batch`` candidates a call; ``table`` looks it up in the benchmark ``table``
    (in the driver process), one recorded training (``sample: seed``) or their mean.
    """

    #: The evaluators of ``nas.evaluators`` (a new one adds its name here).
    kind: Literal["proxy", "supernet", "table"] = "proxy"
    #: supernet: the checkpoint ``nas supernet train`` wrote (``<run dir>/supernet.pt``).
    checkpoint: str | None = None
    #: Long-lived scoring workers (each holds the supernet and the data); 0: score in the driver process.
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    #: Genotypes scored per call (amortises the call's overhead).
    batch: int = 8
    #: supernet: BN recalibration batches (null: the checkpoint's ``supernet.calib_batches``).
    calib_batches: int | None = None
    device: str = "auto"
    #: table: a shipped benchmark (nas-bench-macro) or the path of a .json/.csv table (nas.data.tables).
    table: str | None = None
    #: table: ``seed`` -- one recorded training per candidate (drawn by the search's seed); ``mean`` -- their mean.
    sample: Literal["seed", "mean"] = "seed"

    @property
    def at_proxy_scale(self) -> bool:
        """Scores the proxy-scale network (``proxy.width``/``depth``: trained or a supernet path), not the
        space's network as it is (a table's entry)."""
        return self.kind in ("proxy", "supernet")

    def __post_init__(self) -> None:
        need(self.workers >= 0, "evaluator.workers", self.workers, "an integer >= 0 (0: in the driver process)",
             "e.g. 2")
        need(self.batch >= 1, "evaluator.batch", self.batch, "an integer >= 1", "e.g. 8")
        need(finite(self.cpus_per_worker) and (self.cpus_per_worker > 0 or self.gpus_per_worker > 0),
             "evaluator.cpus_per_worker", self.cpus_per_worker, "a number > 0", "e.g. 1")
        need(finite(self.gpus_per_worker) and self.gpus_per_worker >= 0, "evaluator.gpus_per_worker",
             self.gpus_per_worker, "a number >= 0", "e.g. 0.5")
        need(self.calib_batches is None or self.calib_batches >= 1, "evaluator.calib_batches", self.calib_batches,
             "an integer >= 1 or null", "e.g. 4")
        check_device_name(self.device, "evaluator.device")
        if self.kind != "supernet" and self.checkpoint:
            raise ConfigError(f"evaluator.checkpoint: only used with evaluator.kind 'supernet' (got kind "
                              f"{self.kind!r}); set evaluator.kind=supernet or drop the checkpoint")
        if self.kind != "table" and self.table:
            raise ConfigError(f"evaluator.table: only used with evaluator.kind 'table' (got kind {self.kind!r}); "
                              "set evaluator.kind=table or drop the table")


@dataclass(frozen=True)
class VerifyConfig:
    """YAML section ``verify``: the top-k genotypes retrained standalone with the proxy recipe, per seed.

    ``top_k: 0`` skips verification.  ``reference`` (a genotype name or string, null for none) is
    retrained with the same seeds as the reference line of the summary.  ``truth``: ``training`` (the
    top-k retrained), ``table`` (every candidate of both arms looked up in a converged benchmark
    table: ``table``, else the evaluator's table, else the space's shipped one; free, no training) or
    ``auto`` (``nas.search.truth.truth_table``: the table where the evaluator is a table or the space
    ships one, else training).
    """

    top_k: int = 3
    seeds: tuple[int, ...] = (0, 1)
    reference: str | None = "b0"
    truth: Literal["auto", "table", "training"] = "auto"
    #: truth table: a shipped benchmark name or a .json/.csv path (null: the evaluator's or the space's).
    table: str | None = None

    def __post_init__(self) -> None:
        need(self.top_k >= 0, "verify.top_k", self.top_k, "an integer >= 0 (0 skips verification)", "e.g. 3")
        need(not self.top_k or bool(self.seeds), "verify.seeds", list(self.seeds), "at least one seed",
             "e.g. [0, 1, 2] (or set verify.top_k=0)")
        need(len(set(self.seeds)) == len(self.seeds) and all(s >= 0 for s in self.seeds), "verify.seeds",
             list(self.seeds), "distinct integers >= 0", "e.g. [0, 1]")
        if self.reference is not None:
            from search_spaces import resolve_genotype

            try:
                resolve_genotype(self.reference)
            except ValueError as err:
                raise ConfigError(f"verify.reference: {err}") from None


__all__ = ["BudgetConfig", "ControllerConfig", "DEVICE_PATTERN", "EvaluatorConfig", "OutputConfig", "RayConfig",
           "ResourcesConfig", "SchedulerConfig", "VerifyConfig", "check_device_name", "finite", "need"]
