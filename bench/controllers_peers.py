"""The table bench's landscape and searchers: effnas controllers, Optuna TPE, nevergrad NGOpt, uniform order statistics.

Bench-only: Optuna and nevergrad come with the ``[bench]`` extra (``pip install -e '.[bench]'``); the
library never imports them.  Every searcher is a function ``(landscape, objective, seed, budget, checkpoints) ->
Run`` that asks and tells one sample at a time (one sample = one table lookup) and records, after each
checkpoint's number of samples, the network it reports as its best by its own rule.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from nas.data.tables import load_table
from search_spaces import get_space

OBJECTIVES = ("accuracy", "reward", "noisy")


@dataclass
class Landscape:
    """NAS-Bench-Macro as arrays: every genotype code -> its network; every network -> its values."""

    space: object
    network_of: dict          # tuple(codes) -> network index
    accuracies: np.ndarray    # (networks, trainings)
    macs: np.ndarray          # (networks,)
    target: float             # T of the reward: the table's median MACs
    genotypes_per_network: np.ndarray
    training_noise: float     # sd of one recorded training around its network's mean (BenchmarkTable.training_noise)
    _cache: dict = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Landscape":
        space = get_space("nas-bench-macro")
        table = load_table("nas-bench-macro")
        index: dict = {}
        accs, macs = [], []
        for genotype, record in table.networks():
            index[space.canonical(genotype)] = len(accs)
            accs.append(record.accuracies)
            macs.append(float(record.macs))
        network_of = {}
        for flat in range(int(np.prod(space.decision_sizes))):
            codes = tuple(int(v) for v in np.unravel_index(flat, space.decision_sizes))
            network_of[codes] = index[space.canonical(space.decode(codes))]
        counts = np.bincount(list(network_of.values()), minlength=len(accs))
        macs_array = np.asarray(macs)
        return cls(space, network_of, np.asarray(accs), macs_array, float(np.median(macs_array)), counts,
                   table.training_noise())

    def true_values(self, objective: str) -> np.ndarray:
        mean = self.accuracies.mean(axis=1)
        if objective == "reward":  # MnasNet's soft reward, ACC * (MACs / T) ** -0.07 (nas/cost/objective.py)
            return mean * (self.macs / self.target) ** -0.07
        return mean

    def noise(self, objective: str) -> float:
        """What effnas's table evaluator declares to the controller: the trainings' spread when it draws one
        (``sample: seed``, the noisy objective), 0 when it tells the mean."""
        return self.training_noise if objective == "noisy" else 0.0

    def observe(self, objective: str, network: int, rng: np.random.Generator) -> float:
        if objective == "noisy":  # one recorded training, drawn per lookup
            row = self.accuracies[network]
            return float(row[int(rng.integers(len(row)))])
        if objective not in self._cache:
            self._cache[objective] = self.true_values(objective)
        return float(self._cache[objective][network])


_SHARED: Landscape | None = None


def shared_landscape() -> Landscape:
    """The table's landscape, loaded once a process (pool workers load their own)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Landscape.load()
    return _SHARED


@dataclass
class Run:
    codes: list = field(default_factory=list)      # tuple of decisions per sample
    networks: list = field(default_factory=list)   # network index per sample
    observed: list = field(default_factory=list)   # value the searcher was told
    seconds: float = 0.0                            # time spent in the searcher (ask + tell)
    recommended: dict = field(default_factory=dict)  # budget -> network the searcher reports as its best
    alternative: dict = field(default_factory=dict)  # budget -> bayes's best told (the rule recommend() replaces)


def _search(land: Landscape, objective: str, seed: int, budget: int, checkpoints, ask, tell, recommend,
            alternative=None) -> Run:
    """One timed ask/tell loop of ``budget`` samples; ``recommend()`` (the searcher's own reported best, as
    decision codes) and ``alternative()`` (another rule, if given) are read after each of ``checkpoints``
    samples (not timed)."""
    rng = np.random.default_rng([seed, 7])
    run = Run()
    for i in range(budget):
        start = time.perf_counter()
        handle, codes = ask()
        run.seconds += time.perf_counter() - start
        value = _record(run, land, objective, codes, rng)
        start = time.perf_counter()
        tell(handle, value)
        run.seconds += time.perf_counter() - start
        if i + 1 in checkpoints:
            run.recommended[i + 1] = land.network_of[tuple(int(v) for v in recommend())]
            if alternative is not None:
                run.alternative[i + 1] = land.network_of[tuple(int(v) for v in alternative())]
    return run


def _record(run: Run, land: Landscape, objective: str, codes, rng) -> float:
    codes = tuple(int(v) for v in codes)
    network = land.network_of[codes]
    value = land.observe(objective, network, rng)
    run.codes.append(codes)
    run.networks.append(network)
    run.observed.append(value)
    return value


def run_effnas(name: str, settings: dict, land: Landscape, objective: str, seed: int, budget: int,
               checkpoints=()) -> Run:
    """An effnas controller, told the objective's noise as a search tells it the evaluator's (``noise=``); its
    reported best is ``controller.recommend()`` (for bayes also the best told of the same run: a recommendation
    never changes the proposals)."""
    from controllers import make_controller
    from controllers.base import Controller

    controller = make_controller(name, land.space, seed=seed, settings=settings or None, budget=budget,
                                 noise=land.noise(objective))

    def ask():
        genotype = controller.ask()
        return genotype, land.space.encode(genotype)

    model = hasattr(controller, "noise_best")
    return _search(land, objective, seed, budget, checkpoints, ask, controller.tell,
                   lambda: land.space.encode(controller.recommend()),
                   (lambda: land.space.encode(Controller.recommend(controller))) if model else None)


def run_tpe(land: Landscape, objective: str, seed: int, budget: int, checkpoints=()) -> Run:
    """Optuna's TPE; its reported best is ``study.best_trial``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(multivariate=True, seed=seed))
    names, sizes = land.space.decision_names, land.space.decision_sizes

    def ask():
        trial = study.ask()
        return trial, [trial.suggest_categorical(n, list(range(s))) for n, s in zip(names, sizes)]

    return _search(land, objective, seed, budget, checkpoints, ask, study.tell,
                   lambda: [study.best_trial.params[n] for n in names])


def run_ngopt(land: Landscape, objective: str, seed: int, budget: int, checkpoints=()) -> Run:
    """nevergrad's NGOpt (told the budget); its reported best is ``optimizer.provide_recommendation()``."""
    import nevergrad as ng

    param = ng.p.Tuple(*[ng.p.Choice(list(range(s)), deterministic=True) for s in land.space.decision_sizes])
    param.random_state = np.random.RandomState(seed)
    optimizer = ng.optimizers.NGOpt(parametrization=param, budget=budget, num_workers=1)

    def ask():
        candidate = optimizer.ask()
        return candidate, candidate.value

    return _search(land, objective, seed, budget, checkpoints, ask,
                   lambda candidate, value: optimizer.tell(candidate, -value),  # nevergrad minimises
                   lambda: optimizer.provide_recommendation().value)


def uniform_order_statistics(land: Landscape, objective: str, budgets: list[int], tops: list[int]) -> dict:
    """Exact: uniform sampling of the table's networks without repeats (each network once, as effnas's rule).

    ``best``: the median true value of the best of n draws; ``to_top``: per top-k set, the median number
    of draws to the first member and the share of searches reaching it within ``max(budgets)``.
    """
    values = np.sort(land.true_values(objective))  # ascending
    n_all = len(values)
    out: dict = {"best": {}, "to_top": {}}
    for n in budgets:
        # P(max rank <= k) = C(k, n) / C(N, n) for the k lowest networks; the median is the first k where >= 1/2.
        log_c = [_log_comb(k, n) - _log_comb(n_all, n) for k in range(n_all + 1)]
        k = next(k for k in range(n, n_all + 1) if log_c[k] >= math.log(0.5))
        out["best"][n] = float(values[k - 1])
    for top in tops:
        miss, median = 1.0, None
        for i in range(max(budgets)):
            miss *= (n_all - top - i) / (n_all - i)
            if median is None and miss <= 0.5:
                median = i + 1
        out["to_top"][top] = (median, 1.0 - miss)
    return out


def _log_comb(n: int, k: int) -> float:
    if k > n:
        return -math.inf
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
