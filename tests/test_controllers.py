"""Controllers: one conformance suite run against every registered controller on every shipped space, then
per-controller tests.

The suite follows Optuna's sampler tests (STYLE habit 13): valid proposals,
failed trials, save/restore continuity, seed reproducibility, errors for
results never asked, pending asks told out of order, constraints.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import controllers
from controllers import (Constraint, Controller, EvolutionSettings, InfeasibleConstraintError, ProposalSettings,
                         RandomSearch, RegularizedEvolution, RLController, RLSettings, get_controller_class,
                         list_controllers, make_controller, register_controller)
from controllers.rl_policy import DecisionPolicy, from_plain, optimizer_from_plain, to_plain
from search_spaces import Genotype, get_space, shipped_spaces

#: Small settings so that every phase (evolution's tournaments, RL updates) runs within a few asks.
FAST: dict[str, dict[str, Any]] = {
    "random": {},
    "evolution": {"population": 4, "sample": 2},
    "rl": {"update_every": 3, "hidden": 16},
    "bayes": {"pool": 32},
}


def toy_reward(space, genotype: Genotype) -> float:
    """A deterministic reward: the normalised sum of the decisions (higher options are better)."""
    codes = space.encode(genotype)
    return sum(codes) / sum(s - 1 for s in space.decision_sizes)


def build(name: str, space, seed: int = 0, constraint: Constraint | None = None) -> Controller:
    return make_controller(name, space, seed=seed, constraint=constraint, settings=FAST.get(name))


def drive(controller: Controller, space, rounds: int, pending: int = 1, failed_every: int = 0) -> list[str]:
    """Ask/tell ``rounds`` times keeping ``pending`` asks open; tells the newest first; returns proposals."""
    out: list[str] = []
    queue: list[Genotype] = []
    told = 0
    for _ in range(rounds):
        while len(queue) < pending:
            g = controller.ask()
            out.append(g.to_string(space.stem))
            queue.append(g)
        g = queue.pop()  # out of order: the newest pending ask first
        told += 1
        reward = None if failed_every and told % failed_every == 0 else toy_reward(space, g)
        controller.tell(g, reward)
    for g in queue:
        controller.tell(g, toy_reward(space, g))
    return out


@pytest.fixture(params=shipped_spaces())
def space(request):
    return get_space(request.param)


def other_space(space):
    """A shipped space with other decisions (its genotypes are not in ``space``)."""
    return get_space("tiny" if space.name != "tiny" else "mnasnet")


def code_sum(space):
    """A cost that varies in every space: the sum of the integer decisions; and a feasible lower bound (its mean)."""
    return (lambda g: float(sum(space.encode(g)))), float(sum(s - 1 for s in space.decision_sizes) // 2)


# ---------------------------------------------------------------------------------------------------------
# Conformance: every registered controller
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list_controllers())
class TestConformance:
    def test_proposals_are_in_the_space(self, name, space):
        controller = build(name, space)
        for _ in range(25):
            g = controller.ask()
            space.validate(g)
            controller.tell(g, toy_reward(space, g))
        stats = controller.stats()
        assert stats["asked"] == stats["told"] == 25 and stats["pending"] == 0
        assert all(isinstance(v, float) for v in stats.values())

    def test_failed_trials_are_counted_not_fatal(self, name, space):
        controller = build(name, space)
        failures = [None, math.nan, math.inf, -math.inf, np.float64("nan")]
        for i in range(20):
            g = controller.ask()
            controller.tell(g, failures[i % 5] if i % 2 == 0 else toy_reward(space, g))
        stats = controller.stats()
        assert stats["failed"] == 10 and stats["told"] == 20
        assert math.isfinite(stats["best_reward"])
        for _ in range(5):  # still proposing after failures
            space.validate(controller.ask())

    def test_recommendation_is_a_told_success_and_changes_nothing(self, name, space):
        controller = build(name, space, seed=1)
        assert controller.recommend() is None
        rewards = {}
        for i in range(12):
            g = controller.ask()
            rewards[g] = None if i % 4 == 0 else toy_reward(space, g)
            controller.tell(g, rewards[g])
        before = controller.state_dict()
        pick = controller.recommend()
        assert rewards.get(pick) is not None and controller.state_dict() == before
        if name != "bayes":  # the base rule; bayes's default is the same (test_controller_bayes covers its option)
            assert pick == controller.best[0]

    def test_all_failed_then_recovers(self, name, space):
        controller = build(name, space)
        for _ in range(8):
            controller.tell(controller.ask(), None)
        assert controller.best is None and math.isnan(controller.stats()["best_reward"])
        drive(controller, space, 8)
        assert controller.best is not None

    def test_save_load_mid_run_continues_identically(self, name, space):
        a = build(name, space, seed=3)
        rng = np.random.default_rng(11)
        a.add_evaluated(space.sample(rng), 0.3)
        drive(a, space, 11, pending=3, failed_every=4)
        open_asks = [a.ask(), a.ask()]  # pending at save time
        queued = [space.sample(rng) for _ in range(2)]
        a.enqueue(queued)  # still queued at save time
        state = json.loads(json.dumps(a.state_dict()))  # plain data, JSON round trip
        b = build(name, space, seed=99)
        b.load_state_dict(state)
        assert b.num_pending == 2 and b.stats() == pytest.approx(a.stats(), nan_ok=True)
        assert b.stats()["enqueued"] == 2 and b.stats()["evaluated_unique"] == 14 and b.stats()["added"] == 1
        assert b.recommend() == a.recommend() is not None
        for c in (a, b):
            for g in reversed(open_asks):
                c.tell(g, toy_reward(space, g))
        assert drive(a, space, 12, pending=2) == drive(b, space, 12, pending=2)

    def test_no_genotype_is_proposed_twice(self, name, space):
        controller = build(name, space, seed=4)
        proposals = drive(controller, space, 80, pending=3, failed_every=5)  # failed ones count as evaluated
        assert len(proposals) == 82 and len(set(proposals)) == 82
        stats = controller.stats()
        assert stats["repeats"] == 0 and stats["evaluated_unique"] == 82

    def test_aliases_of_a_network_are_never_proposed(self, name):
        """NAS-Bench-Macro: 6,561 genotypes, 3,969 networks; one network is one candidate (issue 20)."""
        space = get_space("nas-bench-macro")
        controller = build(name, space, seed=6)
        proposals = drive(controller, space, 150, pending=3, failed_every=7)
        keys = [space.canonical(Genotype.from_string(p, space.stem)) for p in proposals]
        assert len(set(keys)) == len(keys) == 152
        stats = controller.stats()
        assert stats["repeats"] == 0 and stats["evaluated_unique"] == 152
        if name == "random":  # ~40% of uniform draws are aliases: they are skipped, and counted
            assert stats["aliases"] > 0 and stats["resampled"] >= stats["aliases"]

    def test_key_and_budget_are_injectable(self, name, space):
        first = space.decision_sizes[0]
        c = make_controller(name, space, seed=1, settings=FAST[name], key=lambda g: space.encode(g)[0], budget=7)
        assert c.budget == 7
        heads = [space.encode(Genotype.from_string(p, space.stem))[0] for p in drive(c, space, first)]
        assert sorted(heads) == list(range(first)) and c.stats()["repeats"] == 0  # one proposal per key value
        with pytest.raises(TypeError, match="key must be a function"):
            make_controller(name, space, key="canonical")
        with pytest.raises(ValueError, match="budget must be a positive integer"):
            make_controller(name, space, budget=0)

    def test_warm_start_is_asked_first_and_once(self, name, space):
        c = build(name, space, seed=2)
        rng = np.random.default_rng(7)
        known = [space.sample(rng) for _ in range(3)]
        c.enqueue([known[0], known[1], known[0]])  # the duplicate is dropped
        assert c.stats()["enqueued"] == 2
        first, second = c.ask(), c.ask()
        assert [first, second] == known[:2]
        c.tell(second, 0.1)
        c.tell(first, 0.9)
        c.enqueue([known[0], known[2]])  # known[0] was evaluated: skipped, known[2] is next
        assert c.ask() == known[2] and c.stats()["from_queue"] == 3 and c.stats()["enqueued"] == 0
        assert c.best == (known[0], 0.9)
        other = other_space(space).sample(rng)
        with pytest.raises(ValueError, match=rf"enqueue: genotype #1 is not in search space '{space.name}'"):
            c.enqueue([known[1], other])
        with pytest.raises(TypeError, match="resolve_genotype"):
            c.enqueue(["b0"])
        assert c.stats()["enqueued"] == 0  # a failed enqueue adds nothing

    def test_warm_start_meets_the_constraint(self, name, space):
        cost, lo = code_sum(space)
        c = build(name, space, constraint=Constraint(cost, lo=lo, hi=lo, max_tries=5000, unit="codes"))
        rng = np.random.default_rng(0)
        base = next(g for g in (space.sample(rng) for _ in range(1000)) if cost(g) != lo)
        with pytest.raises(ValueError, match=rf"outside the constraint \[{lo:g}, {lo:g}\] codes"):
            c.enqueue([base])

    def test_add_evaluated_results_are_learned_and_never_proposed(self, name, space):
        c = build(name, space, seed=1)
        rng = np.random.default_rng(5)
        known = [space.sample(rng) for _ in range(9)]
        for g in known[:-1]:
            c.add_evaluated(g, toy_reward(space, g))
        c.add_evaluated(known[-1], math.nan)  # a failed result
        stats = c.stats()
        assert stats["added"] == 9 and stats["failed"] == 1 and stats["asked"] == stats["told"] == 0
        assert c.best[1] == max(toy_reward(space, g) for g in known[:-1])
        proposals = drive(c, space, 40, pending=2)
        assert not set(proposals) & {g.to_string(space.stem) for g in known}
        with pytest.raises(ValueError, match="add_evaluated: the genotype is not in search space"):
            c.add_evaluated(other_space(space).sample(rng), 0.5)

    def test_repeat_settings_are_typed(self, name, space):
        with pytest.raises(ValueError, match="allow_repeats must be true or false"):
            make_controller(name, space, settings={**FAST[name], "allow_repeats": "yes"})
        with pytest.raises(ValueError, match="resample_tries must be an integer >= 1"):
            make_controller(name, space, settings={**FAST[name], "resample_tries": 0})
        c = make_controller(name, space, settings={**FAST[name], "allow_repeats": True})
        assert c.settings.allow_repeats and isinstance(c.settings, ProposalSettings)

    def test_same_seed_same_sequence(self, name, space):
        runs = []
        for global_seed in (0, 1):  # the global RNGs must not matter
            np.random.seed(global_seed)
            torch.manual_seed(global_seed)
            runs.append(drive(build(name, space, seed=7), space, 20, pending=2))
        assert runs[0] == runs[1]
        assert drive(build(name, space, seed=8), space, 20, pending=2) != runs[0]

    def test_tell_of_a_genotype_never_asked_is_an_error(self, name, space):
        controller = build(name, space)
        asked = controller.ask()
        other = space.sample(np.random.default_rng(123))
        while other == asked:
            other = space.mutate(other, np.random.default_rng(1))
        with pytest.raises(ValueError, match="no pending ask"):
            controller.tell(other, 0.5)
        controller.tell(asked, 0.5)
        with pytest.raises(ValueError, match="already told"):
            controller.tell(asked, 0.5)
        with pytest.raises(TypeError, match="Genotype"):
            controller.tell(asked.to_string(space.stem), 0.5)

    def test_reward_must_be_a_number(self, name, space):
        controller = build(name, space)
        g = controller.ask()
        for bad in ("0.5", True, [0.5]):
            with pytest.raises(TypeError, match="reward must be a number"):
                controller.tell(g, bad)
        controller.tell(g, np.float32(0.5))  # numpy scalars are numbers
        assert controller.best[1] == 0.5

    def test_pending_asks_told_in_any_order(self, name, space):
        controller = build(name, space, seed=5)
        rng = np.random.default_rng(0)
        for _ in range(3):
            asked = [controller.ask() for _ in range(6)]
            assert controller.num_pending == 6
            for i in rng.permutation(len(asked)):
                controller.tell(asked[i], toy_reward(space, asked[i]))
        assert controller.num_pending == 0 and controller.stats()["told"] == 18

    def test_constraint_holds_for_every_proposal(self, name, space):
        cost, lo = code_sum(space)
        controller = build(name, space, constraint=Constraint(cost, lo=lo, hi=lo + 1, max_tries=2000))
        for _ in range(20):
            g = controller.ask()
            assert lo <= cost(g) <= lo + 1
            controller.tell(g, toy_reward(space, g))

    def test_infeasible_constraint_fails_with_bounds_and_closest(self, name, space):
        def filters(g: Genotype) -> float:
            return float(g.blocks[0].filters)

        controller = build(name, space, constraint=Constraint(filters, lo=1000, hi=2000, max_tries=50, unit="ch"))
        with pytest.raises(ValueError, match=r"\[1000, 2000\] ch after 50 tries; the closest cost seen was "
                                             rf"{max(space.positions[0].values('filters'))} ch"):
            controller.ask()

    def test_state_of_another_controller_or_space_is_rejected(self, name, space):
        state = build(name, space).state_dict()
        other = [n for n in list_controllers() if n != name][0]
        with pytest.raises(ValueError, match=f"controller {name!r}"):
            build(other, space).load_state_dict(state)
        with pytest.raises(ValueError, match="search space"):
            build(name, other_space(space)).load_state_dict(state)

    def test_settings_are_typed(self, name, space):
        cls = get_controller_class(name)
        assert cls.name == name
        with pytest.raises(TypeError, match="unknown setting 'no_such_key'"):
            make_controller(name, space, settings={"no_such_key": 1})
        with pytest.raises(TypeError, match=cls.settings_cls.__name__):
            cls(space, settings={"a": 1})
        defaults = cls(space, settings=None).settings
        assert defaults == cls.settings_cls()


# ---------------------------------------------------------------------------------------------------------
# Base class, registry, constraint
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _RepeatSettings(ProposalSettings):
    allow_repeats: bool = True


@dataclass(frozen=True)
class _NoSettings:
    pass


class _Repeater(Controller):
    """Proposes the same genotype every time; records the per-ask info of each tell."""

    name = "repeat"
    settings_cls = _RepeatSettings

    def __init__(self, space, seed=0, constraint=None, settings=None):
        super().__init__(space, seed, constraint, settings)
        self.seen: list[tuple[int, float | None]] = []
        self._count = 0

    def _propose(self):
        self._count += 1
        return self.space.decode([0] * len(self.space.decision_sizes)), {"ask": self._count}

    def _observe(self, genotype, reward, info):
        self.seen.append((info.get("ask"), reward))

    def _core_state(self):
        return {"count": self._count}

    def _load_core_state(self, state):
        self._count = state["count"]


def test_duplicate_asks_are_a_multiset_matched_oldest_first():
    space = get_space("tiny")
    c = _Repeater(space)
    g1, g2, g3 = c.ask(), c.ask(), c.ask()
    assert g1 == g2 == g3 and c.num_pending == 3
    c.tell(g2, 0.1)
    c.tell(g1, None)
    c.tell(g3, 0.3)
    assert c.seen == [(1, 0.1), (2, None), (3, 0.3)]
    with pytest.raises(ValueError, match="0 pending"):
        c.tell(g1, 0.2)
    assert c.best == (g1, 0.3)


def test_repeats_are_resampled_then_a_neighbour_is_walked_to():
    space = get_space("tiny")
    c = _Repeater(space, settings=_RepeatSettings(allow_repeats=False, resample_tries=5))
    g1 = c.ask()
    g2 = c.ask()  # _propose repeats g1 five times; the walk finds an unseen neighbour
    # a walk of single-decision steps; a step to an alias of g1 (the same network) walks on
    assert space.canonical(g2) != space.canonical(g1) and _hamming(space, g1, g2) >= 1
    stats = c.stats()
    assert stats["resampled"] == 5 and stats["neighbours"] == 1 and stats["repeats"] == 0
    c.tell(g2, 0.4)
    assert c.seen == [(None, 0.4)]  # no per-ask info for a neighbour the controller did not propose


def test_an_exhausted_space_gives_a_counted_repeat():
    space = get_space("tiny")
    full = Constraint(lambda g: float(space.encode(g) == [0] * len(space.decision_sizes)), lo=1, hi=1)
    c = _Repeater(space, constraint=full, settings=_RepeatSettings(allow_repeats=False, resample_tries=3))
    g1 = c.ask()
    c.tell(g1, 0.5)
    assert c.ask() == g1 and c.stats()["repeats"] == 1  # the only feasible genotype, proposed again


def test_state_format_1_still_loads():
    space = get_space("tiny")
    a = build("evolution", space, seed=3)
    drive(a, space, 6)
    pending = a.ask()
    state = a.state_dict()
    state["format"] = 1
    for key in ("evaluated", "queue", "proposals"):
        del state[key]
    for key in ("allow_repeats", "resample_tries"):
        del state["settings"][key]
    b = build("evolution", space)
    b.load_state_dict(state)
    assert b.num_pending == 1 and b.stats()["evaluated_unique"] == 0 and b.population == a.population
    b.tell(pending, 0.2)
    with pytest.raises(ValueError, match="reads formats 1, 2"):
        b.load_state_dict({**state, "format": 7})


def test_settings_must_derive_from_proposal_settings():
    class Bare(_Repeater):
        settings_cls = _NoSettings

    with pytest.raises(TypeError, match="must derive from controllers.ProposalSettings"):
        Bare(get_space("tiny"), settings=_NoSettings())


def test_registry_is_strict():
    assert {"random", "evolution", "rl"} <= set(list_controllers())
    assert get_controller_class("evolution") is RegularizedEvolution
    with pytest.raises(ValueError, match="known: bayes, evolution, random, rl"):
        get_controller_class("tpe")
    with pytest.raises(ValueError, match="already registered"):
        register_controller(RandomSearch)
    with pytest.raises(TypeError, match="Controller subclass"):
        register_controller(dict)


def test_settings_load_from_yaml_data_with_the_config_loader():
    from nas.config import ConfigError, from_dict

    settings = from_dict(get_controller_class("rl").settings_cls, {"algorithm": "reinforce", "lr": "3e-3"},
                         "controller.settings")
    assert settings == RLSettings(algorithm="reinforce", lr=0.003)
    with pytest.raises(ConfigError, match="controller.settings.algorithm"):
        from_dict(RLSettings, {"algorithm": "a2c"}, "controller.settings")
    with pytest.raises(ConfigError, match="sample must be <= population"):
        from_dict(EvolutionSettings, {"population": 4, "sample": 8})
    c = make_controller("rl", get_space("tiny"), settings=settings)
    assert c.settings is settings


@pytest.mark.parametrize("cls, kwargs, match", [
    (EvolutionSettings, {"population": 1}, "population must be an integer >= 2"),
    (EvolutionSettings, {"population": 64, "warmup": 80}, "warmup must be <= population"),
    (EvolutionSettings, {"mutations": 0}, "mutations must be an integer >= 1"),
    (RLSettings, {"lr": 0.0}, r"lr must be a number in \(0, 1\]"),
    (RLSettings, {"clip": 1.5}, "clip"),
    (RLSettings, {"baseline_decay": 1.0}, "baseline_decay"),
    (RLSettings, {"hidden": 2.5}, "hidden must be an integer"),
    (RLSettings, {"algorithm": "a2c"}, "'ppo' or 'reinforce'"),
])
def test_bad_settings_name_the_field(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_constructor_checks():
    space = get_space("tiny")
    with pytest.raises(TypeError, match="SearchSpace"):
        RandomSearch("tiny")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        RandomSearch(space, seed=-1)
    with pytest.raises(TypeError, match="constraint"):
        RandomSearch(space, constraint=lambda g: 1.0)


def test_constraint_validation_and_nan_cost():
    with pytest.raises(ValueError, match="lo <= hi"):
        Constraint(lambda g: 0.0, lo=5, hi=1)
    with pytest.raises(ValueError, match="max_tries"):
        Constraint(lambda g: 0.0, max_tries=0)
    with pytest.raises(TypeError, match="function"):
        Constraint(400e6)
    space = get_space("tiny")
    rng = np.random.default_rng(0)
    nan = Constraint(lambda g: math.nan, max_tries=3)
    assert not nan.satisfied(space.sample(rng))
    with pytest.raises(InfeasibleConstraintError, match="after 3 tries"):
        nan.sample(lambda: space.sample(rng))


def test_macs_constraint_with_the_analytical_cost():
    from efficientnet import ModelSpec, count_arch

    space = get_space("mnasnet")

    def macs(g: Genotype) -> float:
        return float(count_arch(ModelSpec(g).arch(), 224, 1000)[1])

    c = make_controller("random", space, constraint=Constraint(macs, lo=300e6, hi=400e6, unit="MACs"))
    assert all(300e6 <= macs(c.ask()) <= 400e6 for _ in range(10))


def test_controller_cores_import_neither_nas_nor_ray():
    """One-way imports: the cores know nothing of nas/ or Ray (only the Ray adapter module imports Ray)."""
    package = Path(controllers.__file__).parent
    modules = sorted(p for p in package.glob("*.py") if p.name != "ray_searcher.py")
    assert {"base.py", "evolution.py", "rl.py", "registry.py"} <= {p.name for p in modules}
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in ("nas", "ray")]
            assert not bad, f"{path.name} imports {bad}"


# ---------------------------------------------------------------------------------------------------------
# Random search
# ---------------------------------------------------------------------------------------------------------
def test_random_search_is_uniform_per_decision():
    space = get_space("mnasnet")
    c = RandomSearch(space, seed=1)
    codes = np.array([space.encode(c.ask()) for _ in range(2000)])
    for i, size in enumerate(space.decision_sizes):
        freq = np.bincount(codes[:, i], minlength=size) / len(codes)
        assert np.all(np.abs(freq - 1 / size) < 0.04), (space.decision_names[i], freq)


# ---------------------------------------------------------------------------------------------------------
# Regularized evolution
# ---------------------------------------------------------------------------------------------------------
def _hamming(space, a: Genotype, b: Genotype) -> int:
    return sum(x != y for x, y in zip(space.encode(a), space.encode(b)))


def test_evolution_warms_up_then_mutates_tournament_winners():
    space = get_space("mnasnet")
    c = RegularizedEvolution(space, seed=2, settings=EvolutionSettings(population=6, sample=3, mutations=2))
    warm = [c.ask() for _ in range(6)]
    assert c.stats()["random_proposals"] == 6
    rewards = [0.1, 0.2, 0.9, 0.3, 0.4, 0.5]
    for g, r in zip(warm, rewards):
        c.tell(g, r)
    parents = []
    for _ in range(200):
        child = c.ask()
        dist = [_hamming(space, child, p) for p in warm]
        assert min(dist) == 2  # exactly `mutations` decisions changed
        parents.append(int(np.argmin(dist)))
        c.tell(child, None)  # failures never enter the population
    assert len(c.population) == 6 and c.stats()["mutant_proposals"] == 200
    # Tournament of 3 drawn with replacement from 6: the member of reward rank k (0 = worst) wins with
    # probability ((k+1)/6)^3 - (k/6)^3 (0.005 for the worst, 0.42 for the best).
    rank = np.argsort(np.argsort(rewards))
    expected = ((rank + 1) / 6) ** 3 - (rank / 6) ** 3
    freq = np.bincount(parents, minlength=6) / len(parents)
    assert np.allclose(freq, expected, atol=0.06), (freq, expected)
    assert np.argmax(freq) == 2


def test_evolution_removes_the_oldest_not_the_worst():
    space = get_space("tiny")
    c = RegularizedEvolution(space, seed=0, settings=EvolutionSettings(population=3, sample=1))
    asked = [c.ask() for _ in range(3)]
    for g, r in zip(asked, [0.99, 0.1, 0.2]):
        c.tell(g, r)
    newest = c.ask()
    c.tell(newest, 0.05)
    assert [r for _, r in c.population] == [0.1, 0.2, 0.05]  # the best (and oldest) member aged out
    assert c.best[1] == 0.99


@pytest.mark.parametrize("budget, population, sample", [(None, 64, 16), (25, 8, 2), (100, 16, 4), (200, 33, 8),
                                                        (500, 64, 16), (20000, 64, 16)])
def test_evolution_is_sized_by_the_budget(budget, population, sample):
    """Issue 20: no 64-sample random warm-up for a 100-sample search."""
    space = get_space("tiny")
    c = make_controller("evolution", space, budget=budget)
    assert (c.population_size, c.tournament_size, c.warmup_size) == (population, sample, population)
    for _ in range(population):
        g = c.ask()
        c.tell(g, toy_reward(space, g))
    c.ask()
    assert c.stats()["random_proposals"] == population and c.stats()["mutant_proposals"] == 1
    pinned = make_controller("evolution", space, budget=100, settings={"population": 40, "warmup": 10})
    assert (pinned.population_size, pinned.tournament_size, pinned.warmup_size) == (40, 10, 10)


def test_a_run_saved_with_the_old_evolution_defaults_resumes_with_them():
    """Issue 20: old runs recorded population=64, sample=16; unset (budget-sized) settings adopt them."""
    space = get_space("tiny")
    old = make_controller("evolution", space, seed=2, settings={"population": 64, "sample": 16})
    drive(old, space, 70)
    state = json.loads(json.dumps(old.state_dict()))
    state["settings"]["warmup"] = None  # as the old version saved it
    resumed = make_controller("evolution", space, seed=0, budget=100)  # would be 16/4 by itself
    assert (resumed.population_size, resumed.tournament_size) == (16, 4)
    resumed.load_state_dict(state)
    assert (resumed.population_size, resumed.tournament_size, resumed.warmup_size) == (64, 16, 64)
    assert (resumed.settings.population, resumed.settings.sample) == (64, 16)
    assert drive(resumed, space, 10) == drive(old, space, 10)
    explicit = make_controller("evolution", space, settings={"population": 32}, budget=100)
    with pytest.raises(ValueError, match=r"saved with settings population=64, this controller has population=32"):
        explicit.load_state_dict(state)
    same = make_controller("evolution", space, settings={"population": 64, "sample": 16}, budget=100)
    same.load_state_dict(state)  # explicit and equal: fine
    assert same.tournament_size == 16


def test_evolution_warmup_setting():
    space = get_space("tiny")
    c = RegularizedEvolution(space, settings=EvolutionSettings(population=10, sample=2, warmup=2))
    for _ in range(2):
        g = c.ask()
        c.tell(g, toy_reward(space, g))
    c.ask()
    assert c.stats()["mutant_proposals"] == 1


# ---------------------------------------------------------------------------------------------------------
# RL: policy, PPO / REINFORCE
# ---------------------------------------------------------------------------------------------------------
def _perturbed_policy(space, hidden=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    policy = DecisionPolicy(space.decision_sizes, hidden, gen)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    return policy, gen


def test_policy_starts_uniform():
    space = get_space("mnasnet")
    policy = DecisionPolicy(space.decision_sizes, 32, torch.Generator().manual_seed(0))
    decisions, logp = policy.sample(torch.Generator().manual_seed(1))
    uniform = -sum(math.log(s) for s in space.decision_sizes)
    assert logp == pytest.approx(uniform)
    with torch.no_grad():
        lp, ent = policy.evaluate(torch.tensor([decisions]))
    assert float(lp) == pytest.approx(uniform, abs=1e-4) and float(ent) == pytest.approx(-uniform, abs=1e-4)


def test_policy_sampling_matches_its_scored_distribution():
    space = get_space("tiny")
    policy, gen = _perturbed_policy(space)
    draws = [policy.sample(gen) for _ in range(2000)]
    decisions = torch.tensor([d for d, _ in draws])
    with torch.no_grad():
        logp, _ = policy.evaluate(decisions)
    assert np.allclose(logp.numpy(), [lp for _, lp in draws], atol=1e-4)
    # First decision: empirical frequencies vs. the softmax of its head rows on the start token.
    with torch.no_grad():
        out, _ = policy.lstm(policy.embed(torch.zeros(1, 1, dtype=torch.long)))
        first = torch.softmax(policy.head(out)[0, 0, :space.decision_sizes[0]], 0).numpy()
    freq = np.bincount(decisions[:, 0].numpy(), minlength=len(first)) / len(draws)
    assert first.max() > 0.4 and np.allclose(freq, first, atol=0.03), (freq, first)


def test_entropy_gradient_is_finite():
    space = get_space("mnasnet")
    policy, gen = _perturbed_policy(space)
    decisions = torch.tensor([policy.sample(gen)[0] for _ in range(4)])
    logp, ent = policy.evaluate(decisions)
    (logp.mean() + ent.mean()).backward()
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters())


def test_tensor_state_round_trip_is_exact():
    space = get_space("tiny")
    policy, _ = _perturbed_policy(space)
    opt = torch.optim.Adam(policy.parameters(), lr=0.01)
    policy.evaluate(torch.zeros(2, len(space.decision_sizes), dtype=torch.long))[0].sum().backward()
    opt.step()
    plain = json.loads(json.dumps({"p": to_plain(policy.state_dict()), "o": to_plain(opt.state_dict())}))
    restored = from_plain(plain["p"])
    for k, v in policy.state_dict().items():
        assert torch.equal(restored[k], v) and restored[k].dtype == v.dtype
    opt_state = optimizer_from_plain(plain["o"])
    assert torch.equal(opt_state["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce"])
def test_rl_learns_a_toy_objective(algorithm):
    space = get_space("tiny")
    c = RLController(space, seed=0, settings=RLSettings(algorithm=algorithm, hidden=32, lr=0.02, update_every=8))
    rewards = []
    for _ in range(320):
        g = c.ask()
        rewards.append(toy_reward(space, g))
        c.tell(g, rewards[-1])
    stats = c.stats()
    assert stats["updates"] == 40 and math.isfinite(stats["policy_loss"])
    # +0.15: every proposal is a new network (no repeats, no aliases), so late proposals cannot all be the optimum
    assert np.mean(rewards[-60:]) > np.mean(rewards[:60]) + 0.15
    assert stats["entropy"] < sum(math.log(s) for s in space.decision_sizes)  # below uniform


def test_rl_keeps_the_log_prob_of_each_pending_ask():
    space = get_space("tiny")
    c = RLController(space, seed=1, settings=RLSettings(update_every=2, hidden=16, lr=0.05))
    early = c.ask()
    early_logp = c.state_dict()["pending"][0]["info"]["logp"]
    for _ in range(6):  # the policy changes while `early` is pending
        g = c.ask()
        c.tell(g, toy_reward(space, g))
    assert c.stats()["updates"] == 3
    (item,) = c.state_dict()["pending"]
    assert item["info"]["logp"] == early_logp
    with torch.no_grad():
        now, _ = c.policy.evaluate(torch.tensor([item["info"]["decisions"]]))
    assert abs(float(now) - early_logp) > 1e-3
    c.tell(early, 1.0)


def test_rl_failed_trials_skip_or_use_failed_reward():
    space = get_space("tiny")
    skip = RLController(space, settings=RLSettings(update_every=100))
    zero = RLController(space, settings=RLSettings(update_every=100, failed_reward=0.0))
    for c in (skip, zero):
        for _ in range(3):
            c.tell(c.ask(), None)
    assert skip.stats()["buffer"] == 0 and skip.stats()["skipped_failed"] == 3
    assert zero.stats()["buffer"] == 3 and zero.stats()["skipped_failed"] == 0
    every2 = RLController(space, settings=RLSettings(update_every=2))
    for reward in (None, None, 0.5, 0.7):  # two failures: no update; the next two trials: one update
        every2.tell(every2.ask(), reward)
    assert every2.stats()["updates"] == 1


def test_rl_update_runs_every_k_completed_trials():
    space = get_space("tiny")
    c = RLController(space, settings=RLSettings(update_every=4, hidden=16))
    for i in range(11):
        g = c.ask()
        c.tell(g, None if i == 1 else toy_reward(space, g))
    assert c.stats()["updates"] == 2 and c.stats()["buffer"] == 3
    assert c.stats()["baseline"] == pytest.approx(c.state_dict()["core"]["baseline"])


def test_rl_entropy_floor_keeps_proposals_new():
    """Item 16 of issue 13: without the floor and the rule against repeats, RL re-proposed 92-98% of its last
    proposals; on a reward with one optimum (the fastest collapse) the peer below shows it, the default not."""
    space = get_space("mnasnet")

    def run(**kw):
        c = RLController(space, seed=0, settings=RLSettings(lr=0.02, update_every=8, **kw))
        proposals = []
        for _ in range(320):
            g = c.ask()
            proposals.append(g)
            c.tell(g, toy_reward(space, g))
        earlier = set(proposals[:160])
        repeats = 0
        for g in proposals[160:]:
            repeats += g in earlier
            earlier.add(g)
        return c, proposals, repeats / 160

    c, proposals, rate = run()
    assert len(set(proposals)) == 320 and rate == 0.0 and c.stats()["repeats"] == 0
    uniform = sum(math.log(n) for n in space.decision_sizes)
    assert c.entropy_floor == pytest.approx(0.25 * uniform) and uniform == pytest.approx(38.83, abs=0.01)
    assert c.stats()["entropy"] >= 0.95 * c.entropy_floor
    collapsed, _, peer_rate = run(allow_repeats=True, min_entropy=0.0)
    assert peer_rate > 0.75 and collapsed.stats()["entropy"] < 0.5


def test_rl_redraws_come_from_the_tempered_policy_not_a_walk():
    """Issue 20: a repeated policy draw is redrawn from the policy at a rising temperature; the walk to a
    neighbour is the last resort (counted in 'neighbours')."""
    space = get_space("tiny")
    c = RLController(space, seed=0, settings=RLSettings(hidden=16, lr=0.05, update_every=4))
    for _ in range(200):
        g = c.ask()
        c.tell(g, toy_reward(space, g))
    stats = c.stats()
    assert stats["resampled"] > 0 and stats["tempered_proposals"] > 0 and stats["neighbours"] == 0
    policy, gen = _perturbed_policy(space)
    decisions, logp = policy.sample(torch.Generator().manual_seed(3), temperature=4.0)
    with torch.no_grad():
        scored, _ = policy.evaluate(torch.tensor([decisions]))
    assert logp != pytest.approx(float(scored), abs=1e-3)  # the tempered distribution's log-prob, not the policy's
    assert RLSettings().redraw_temperature == 0.05


def test_rl_add_evaluated_uses_the_current_policy_log_prob():
    space = get_space("tiny")
    c = RLController(space, seed=2, settings=RLSettings(update_every=100, hidden=16))
    g = space.sample(np.random.default_rng(0))
    c.add_evaluated(g, 0.7)
    (decisions, logp, advantage), = c._buffer
    with torch.no_grad():
        now, _ = c.policy.evaluate(torch.tensor([space.encode(g)]))
    assert decisions == space.encode(g) and logp == pytest.approx(float(now)) and advantage == 0.0
    assert c.stats()["baseline"] == pytest.approx(0.7)


def test_evolution_warm_start_from_added_results_skips_the_random_phase():
    space = get_space("tiny")
    c = RegularizedEvolution(space, seed=0, settings=EvolutionSettings(population=4, sample=2))
    rng = np.random.default_rng(1)
    for g in [space.sample(rng) for _ in range(4)]:
        c.add_evaluated(g, toy_reward(space, g))
    assert len(c.population) == 4
    c.ask()
    assert c.stats()["mutant_proposals"] == 1 and c.stats()["random_proposals"] == 0
