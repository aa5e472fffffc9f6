"""A Ray Tune ``Searcher`` around any ask/tell controller (the only Ray import in controllers/).

Like Ray's ``OptunaSearch`` around Optuna's ask/tell: ``suggest`` asks the
controller for a genotype and hands Tune the config ``{"genotype": "<TF block
string>", ...}``; ``on_trial_complete`` tells the controller the trial's reward, or
``None`` when the trial errored, reported no metric, or reported
``status: failed`` -- or whatever an injected ``reward_of(result, error)``
decides (effnas's driver passes ``nas.search.trial.reward_to_tell``, which
also tells a trial stopped early by a scheduler as ``None``).  ``save``/``restore`` pickle the controller's
``state_dict()`` plus the map of live trials, so a resumed Tune run continues
the same search.  Usable in a user's own ``Tuner``::

    searcher = ControllerSearcher(make_controller("evolution", get_space("mnasnet")), metric="reward", mode="max")
    tune.Tuner(my_trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=100)).fit()

Ray's searcher conventions, as its own searchers keep them:

* ``metric``/``mode`` come from the constructor or from ``TuneConfig(metric=, mode=)``
  (``set_search_properties``); a value set in both places must agree.  Ray hands
  ``TuneConfig``'s values to a searcher only together with a non-empty
  ``param_space``: without one, pass them here.  Neither set: the first
  ``suggest`` raises, as Ray's searchers do.  ``mode="min"`` tells the
  controller ``-value`` (controllers maximise).
* Every other ``param_space`` entry reaches the trainable resolved: constants as
  they are, ``tune.uniform``/``tune.choice``/... domains (and ``sample_from``)
  sampled per trial with the searcher's own seeded generator.  ``grid_search``
  is rejected (the controller decides the trials), so is a ``genotype`` entry.
* ``points_to_evaluate``: genotypes run first (a warm start, e.g. ``["b0"]``);
  with ``evaluated_rewards`` they are told as known results instead.
  ``add_evaluated_point`` / ``add_evaluated_trials`` feed results evaluated
  elsewhere (``parameters["genotype"]``); an errored or pruned point is a failed
  result.

Reproducibility: with several trials in flight, the same seed gives different
proposals when trials finish in another order (each ask sees the results told
so far).  ``deterministic=True`` removes that: with ``C`` the concurrency limit
(``ConcurrencyLimiter``/``TuneConfig(max_concurrent_trials=C)``), the ``k``-th
suggestion is made only once the results of suggestions ``0 .. k-C`` are in,
and exactly those are told, in suggestion order.  The price: a slow trial holds
new suggestions back (up to ``C - 1`` slots idle) until it finishes.
"""

from __future__ import annotations

import copy
import logging
import math
import pickle
from typing import Any, Callable, Iterable

import numpy as np
from ray import cloudpickle
from ray.tune.search import Searcher
from ray.tune.search.variant_generator import generate_variants, parse_spec_vars

from search_spaces import Genotype, resolve_genotype

logger = logging.getLogger(__name__)

GENOTYPE_KEY = "genotype"
_MODES = ("max", "min")


class ControllerSearcher(Searcher):
    """Maps Tune trial ids to genotypes; everything else is the controller's."""

    def __init__(self, controller: Any, metric: str | None = None, mode: str | None = None,
                 extra_config: dict[str, Any] | None = None, max_trials: int | None = None,
                 recorded_ids: Callable[[], Iterable[str]] | None = None,
                 points_to_evaluate: list[Any] | None = None, evaluated_rewards: list[float] | None = None,
                 deterministic: bool = False, seed: int | None = None,
                 reward_of: Callable[[dict | None, bool], float | None] | None = None) -> None:
        """``max_trials``: suggest no more than this many trials in all (resumed sessions included).

        ``recorded_ids``: a function returning the ids of trials finished and recorded elsewhere
        (e.g. a results file).  After a restore, recorded trials this searcher's checkpoint never
        saw (finished after Tune's last experiment checkpoint, before a crash) count against
        ``max_trials``, so a resumed search does not run more trials than its budget.

        ``points_to_evaluate``: genotypes (names such as ``"b0"``, TF block strings, Genotypes, or
        dicts with a ``"genotype"`` key) suggested first; ``evaluated_rewards`` (same length): their
        known metric values, told instead of running them.  ``deterministic``: results told in
        suggestion order (module docstring).  ``seed``: of the generator that samples other
        ``param_space`` entries (default: the controller's seed).

        ``reward_of(result, error)``: the reward to tell for a completed trial (``None``: no reward);
        default: ``metric`` of the last result, ``None`` for an error, ``status: failed`` or a non-finite value.
        """
        _check_metric_mode(metric, mode)
        super().__init__(metric=metric, mode=mode)
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be True or False, got {deterministic!r}")
        self.controller = controller
        self.extra_config = dict(extra_config or {})
        if GENOTYPE_KEY in self.extra_config:
            raise ValueError(f"extra_config must not hold {GENOTYPE_KEY!r}: the controller proposes it")
        self.max_trials = max_trials
        self.recorded_ids = recorded_ids
        self.reward_of = reward_of
        self.deterministic = deterministic
        self.live: dict[str, str] = {}
        self.done: set[str] = set()
        self.unseen = 0  # recorded trials from after the checkpoint this searcher was restored from
        self.param_space: dict[str, Any] = {}
        self.max_concurrent: int | None = None
        self.num_samples: int | None = None
        self._rng = np.random.default_rng(getattr(controller, "seed", 0) if seed is None else seed)
        self._order: list[str] = []                    # suggested, not yet told (suggestion order)
        self._results: dict[str, tuple[str, float | None]] = {}  # finished, not yet told: genotype, reward
        self._suggested = 0
        self._warned_missing = False
        points = [_genotype_of(p, f"points_to_evaluate[{i}]") for i, p in enumerate(points_to_evaluate or [])]
        if evaluated_rewards is not None:
            if len(evaluated_rewards) != len(points):
                raise ValueError(f"evaluated_rewards has {len(evaluated_rewards)} values for {len(points)} "
                                 "points_to_evaluate; give one reward per point")
            for genotype, value in zip(points, evaluated_rewards):
                self.add_evaluated_point({GENOTYPE_KEY: genotype}, value)
        elif points:
            controller.enqueue(points)

    # -- Ray's searcher conventions -------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        _check_metric_mode(metric, mode)
        for name, given in (("metric", metric), ("mode", mode)):
            mine = getattr(self, f"_{name}")
            if given and mine and given != mine:
                raise ValueError(f"ControllerSearcher was built with {name}={mine!r} but the Tuner passes "
                                 f"{name}={given!r}; set it in one place")
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        self.num_samples = spec.get("num_samples", self.num_samples)
        if config:
            self.param_space = _checked_param_space(config)
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = int(max_concurrent)
        return False  # the ConcurrencyLimiter keeps limiting; deterministic mode only needs the number

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._metric is None or self._mode is None:
            raise RuntimeError(
                f"Trying to sample a configuration from ControllerSearcher, but the `metric` ({self._metric}) or "
                f"`mode` ({self._mode}) parameters have not been set. Pass them to ControllerSearcher(metric=..., "
                "mode=...), or to tune.TuneConfig() together with a non-empty param_space (Ray passes "
                "TuneConfig's metric and mode to a searcher only with a param_space)")
        if self._all_suggested():
            return Searcher.FINISHED
        if self.deterministic and not self._tell_results_due():
            return None
        genotype = self.controller.ask()
        text = genotype.to_string()
        self.live[trial_id] = text
        self._order.append(trial_id)
        self._suggested += 1
        config = self._resolved_param_space()
        config.update(self.extra_config)
        config[GENOTYPE_KEY] = text
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        text = self.live.pop(trial_id, None)
        if text is None:
            logger.warning("trial %s completed but was not suggested by this searcher; ignored", trial_id)
            return
        self.done.add(trial_id)
        value = self._signed(self._reward(result, error))
        if value is None and not error and result and self.metric not in result and not self._warned_missing:
            self._warned_missing = True
            logger.warning("trial %s reported no %r (its result has %s); told as failed; set metric= to the "
                           "name the trainable reports", trial_id, self.metric, ", ".join(sorted(result)[:12]))
        self._results[trial_id] = (text, value)
        if not self.deterministic:
            self._order.remove(trial_id)
            self._tell(trial_id)
        elif self._all_suggested():  # no suggestion depends on the order any more
            self._tell_in_order(limit=None)

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """A result evaluated elsewhere: ``parameters["genotype"]`` and its metric ``value``.

        Errored and pruned points are told as failed (the controller will not propose them again).
        """
        if self._mode is None:
            raise RuntimeError("add_evaluated_point needs the searcher's mode ('max' or 'min'): pass "
                               "ControllerSearcher(metric=..., mode=...)")
        if not isinstance(parameters, dict) or GENOTYPE_KEY not in parameters:
            keys = sorted(parameters) if isinstance(parameters, dict) else type(parameters).__name__
            raise ValueError(f"add_evaluated_point: parameters must hold {GENOTYPE_KEY!r} (a TF block string, a "
                             f"name such as 'b0', or a Genotype), got {keys}")
        genotype = _genotype_of(parameters[GENOTYPE_KEY], "add_evaluated_point: parameters['genotype']")
        reward = None if error or pruned or value is None else float(value)
        self.controller.add_evaluated(genotype, self._signed(reward))

    def flush(self) -> None:
        """Tell every result held back by deterministic mode (in suggestion order), e.g. after ``fit()``."""
        self._tell_in_order(limit=None)

    # -- deterministic mode -----------------------------------------------------
    def _all_suggested(self) -> bool:
        total = self.max_trials if self.max_trials is not None else self.num_samples
        return total is not None and len(self.done) + len(self.live) + self.unseen >= total

    def _tell_results_due(self) -> bool:
        """Tell the results of suggestions ``0 .. k-C`` before suggestion ``k``; False while one is missing."""
        if self.max_concurrent is None:
            raise RuntimeError("ControllerSearcher(deterministic=True) needs a concurrency limit: wrap it in "
                               "ConcurrencyLimiter(searcher, max_concurrent=N) or set "
                               "tune.TuneConfig(max_concurrent_trials=N)")
        due = self._suggested - self.max_concurrent + 1 - (self._suggested - len(self._order))
        if any(t not in self._results for t in self._order[:max(due, 0)]):
            return False
        self._tell_in_order(limit=max(due, 0))
        return True

    def _tell_in_order(self, limit: int | None) -> None:
        """Tell the finished results at the head of the suggestion order: ``limit`` of them, or all there are."""
        count = 0
        while self._order and self._order[0] in self._results and (limit is None or count < limit):
            self._tell(self._order.pop(0))
            count += 1

    def _tell(self, trial_id: str) -> None:
        text, value = self._results.pop(trial_id)
        self.controller.tell(Genotype.from_string(text), value)

    def _signed(self, value: float | None) -> float | None:
        """Controllers maximise: a metric to minimise is told negated."""
        return -value if value is not None and self._mode == "min" else value

    def _reward(self, result: dict | None, error: bool) -> float | None:
        if self.reward_of is not None:
            return self.reward_of(result, error)
        if error or not result or result.get("status") == "failed":
            return None
        value = result.get(self.metric)
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    def _resolved_param_space(self) -> dict[str, Any]:
        if not self.param_space:
            return {}
        _, resolved = next(generate_variants(copy.deepcopy(self.param_space), random_state=self._rng))
        return resolved

    # -- checkpoints --------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:  # cloudpickle: a param_space may hold sample_from lambdas
            cloudpickle.dump({"controller": self.controller.state_dict(), "live": dict(self.live),
                         "done": sorted(self.done), "metric": self._metric, "mode": self._mode,
                         "param_space": self.param_space, "rng": self._rng.bit_generator.state,
                         "order": list(self._order), "results": dict(self._results),
                         "suggested": self._suggested, "max_concurrent": self.max_concurrent,
                         "num_samples": self.num_samples}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.controller.load_state_dict(state["controller"])
        self.live = dict(state["live"])
        self.done = set(state.get("done", ()))
        self._metric = state["metric"]
        self._mode = state.get("mode", "max")  # checkpoints before modes: the searcher maximised
        self.param_space = state.get("param_space", {})
        if "rng" in state:
            self._rng.bit_generator.state = state["rng"]
        self._order = list(state.get("order", self.live))
        self._results = dict(state.get("results", {}))
        self._suggested = int(state.get("suggested", len(self.done) + len(self.live)))
        self.max_concurrent = self.max_concurrent or state.get("max_concurrent")
        self.num_samples = self.num_samples or state.get("num_samples")
        if self.recorded_ids is not None:
            self.unseen = len(set(self.recorded_ids()) - self.done - set(self.live))
            if self.unseen:
                logger.info("%d trial(s) finished after the last checkpoint; they count against the budget",
                            self.unseen)


def _check_metric_mode(metric: object, mode: object) -> None:
    if metric is not None and not isinstance(metric, str):
        raise ValueError(f"ControllerSearcher optimises one metric: metric must be a str, got {metric!r}; "
                         "combine several into one reward (e.g. MnasNet's ACC * (cost/T)^w)")
    if mode is not None and mode not in _MODES:
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")


def _checked_param_space(config: dict) -> dict[str, Any]:
    if GENOTYPE_KEY in config:
        raise ValueError(f"param_space[{GENOTYPE_KEY!r}] is set by ControllerSearcher (the controller proposes "
                         "it); remove it from param_space (a fixed genotype: points_to_evaluate=[...])")
    _, _, grid = parse_spec_vars(config)
    if grid:
        path = "/".join(map(str, grid[0][0]))
        raise ValueError(f"param_space[{path!r}] is a grid_search, which ControllerSearcher does not support "
                         "(the controller decides the trials); use tune.choice([...]) instead")
    return copy.deepcopy(config)


def _genotype_of(value: Any, what: str) -> Genotype:
    if isinstance(value, dict):
        if GENOTYPE_KEY not in value:
            raise ValueError(f"{what}: a dict needs a {GENOTYPE_KEY!r} key, got keys {sorted(value)}")
        value = value[GENOTYPE_KEY]
    if isinstance(value, Genotype):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a genotype name, a TF block string or a Genotype, got "
                        f"{type(value).__name__}")
    try:
        return resolve_genotype(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
