"""The bayes controller's own pieces: exact chain maximiser, the linear posterior, learning speed, settings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from controllers import BayesSettings, make_controller
from controllers.bayes_model import FeatureMap, LinearPosterior
from search_spaces import get_space


@pytest.mark.parametrize("pairwise", [False, True])
def test_argmax_is_the_exact_maximiser(pairwise):
    sizes = [3, 2, 4, 2, 3]
    fm = FeatureMap(sizes, pairwise)
    assert fm.num_features == sum(sizes) + (FeatureMap.pair_count(sizes) if pairwise else 0)
    rng = np.random.default_rng(0)
    every = np.array(list(itertools.product(*[range(s) for s in sizes])))
    for _ in range(20):
        w = rng.standard_normal(fm.num_features)
        assert fm.score(w, np.array([fm.argmax(w)]))[0] == pytest.approx(fm.score(w, every).max())


def test_posterior_recovers_an_additive_function():
    sizes = [3] * 6
    fm = FeatureMap(sizes, pairwise=False)
    rng = np.random.default_rng(1)
    true = rng.standard_normal(fm.num_features)
    model = LinearPosterior(fm, pair_precision=4.0)
    for codes in rng.integers(3, size=(120, 6)):
        model.add(codes.tolist(), float(fm.score(true, codes[None])[0] + 0.01 * rng.standard_normal()))
    mean, _ = model.posterior()
    assert fm.argmax(mean) == fm.argmax(true)
    draws = np.array([model.thompson(np.random.default_rng(s)) for s in range(50)])
    assert np.all(np.std(draws, axis=0) > 0) and np.allclose(draws.mean(axis=0), mean, atol=0.2)


def _samples_to_optimum(name: str, seed: int) -> int:
    """Asks until the best genotype of an additive toy reward on NAS-Bench-Macro's space (at most 200)."""
    space = get_space("nas-bench-macro")
    weights = np.random.default_rng(99).standard_normal((8, 3))
    c = make_controller(name, space, seed=seed)
    best = space.canonical(space.decode(weights.argmax(axis=1)))
    for i in range(1, 201):
        g = c.ask()
        if space.canonical(g) == best:
            return i
        c.tell(g, float(weights[np.arange(8), space.encode(g)].sum()))
    return 201


def test_bayes_finds_an_additive_optimum_far_sooner_than_random():
    bayes = [_samples_to_optimum("bayes", s) for s in range(3)]
    random = [_samples_to_optimum("random", s) for s in range(3)]
    assert max(bayes) <= 30 and np.median(random) > 3 * np.median(bayes), (bayes, random)


def test_failed_results_teach_nothing_and_are_not_proposed_again():
    space = get_space("tiny")
    c = make_controller("bayes", space, seed=0)
    failed = []
    for i in range(30):
        g = c.ask()
        if i % 3 == 0:
            failed.append(space.canonical(g))
            c.tell(g, None)
        else:
            c.tell(g, float(sum(space.encode(g))))
    stats = c.stats()
    # uniform draws until 4 successful results (asks 0-5, two of them failed), the model afterwards
    assert stats["model_size"] == 20 and stats["failed"] == 10 and stats["random_proposals"] == 6
    assert stats["model_proposals"] == 24
    assert not {space.canonical(c.ask()) for _ in range(10)} & set(failed)


@pytest.mark.parametrize("kwargs, match", [
    ({"interactions": "all"}, "interactions must be 'adjacent' or 'none'"),
    ({"initial": 1}, "initial must be an integer >= 2"),
    ({"pair_precision": 0.0}, "pair_precision"),
    ({"pool": -1}, "pool must be an integer >= 0"),
])
def test_bad_settings_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BayesSettings(**kwargs)


def test_pairs_are_dropped_above_max_features():
    fbnet = get_space("fbnet")
    c = make_controller("bayes", fbnet, settings={"interactions": "adjacent"})
    assert not c.features.pairwise and c.features.num_features == sum(fbnet.decision_sizes)
    macro = make_controller("bayes", get_space("nas-bench-macro"), settings={"interactions": "adjacent"})
    assert macro.features.pairwise and macro.features.num_features == 24 + 7 * 9
