"""The bayes controller's own pieces: exact chain maximiser, the linear posterior, learning speed, settings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from controllers import BayesSettings, make_controller
from controllers.bayes_model import FeatureMap, LinearPosterior, normal_scores
from controllers.bayes_recommend import SCALES, known_noise_means
from search_spaces import get_space


def test_normal_scores_of_ranks_with_ties_sharing_their_mean_rank():
    # ranks 0, 2.5, 2.5, 1 of 4 -> Phi^-1 of 0.125, 0.75, 0.75, 0.375 (tabulated quantiles of the standard normal)
    assert normal_scores([1.0, 3.0, 3.0, 2.0]) == pytest.approx(
        [-1.1503493803760079, 0.6744897501960817, 0.6744897501960817, -0.3186393639643752], abs=1e-12)
    model = LinearPosterior(FeatureMap([2], False), 4.0)
    for code, reward in ((0, 5.0), (1, -2.0), (0, 9.0)):
        model.add([code], reward)
    assert model.targets(2).tolist() == normal_scores([5.0, -2.0]).tolist()  # the first rows only


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
    ({"noise": -1.0}, "BayesSettings.noise"),
    ({"recommend": "mean"}, "BayesSettings.recommend"),
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


def _noisy_additive_with_a_lucky_outlier(settings, noise=None):
    """150 networks of an additive reward seen through noise, one poor network told a lucky (highest) value."""
    space = get_space("nas-bench-macro")
    rng = np.random.default_rng(5)
    weights = rng.standard_normal((8, 3))
    c = make_controller("bayes", space, seed=0, settings=settings, noise=noise)
    truth = {}
    for codes in rng.integers(3, size=(150, 8)):
        g = space.decode(codes.tolist())
        truth[g] = float(weights[np.arange(8), codes].sum())
    told = {g: v + 0.5 * rng.standard_normal() for g, v in truth.items()}
    outlier = min(truth, key=truth.get)  # the worst network, told the luckiest value
    told[outlier] = max(told.values()) + 1.0
    for g, v in told.items():
        c.add_evaluated(g, v)
    return c, truth, outlier


def test_posterior_mean_recommendation_ignores_a_lucky_outlier():
    c, truth, outlier = _noisy_additive_with_a_lucky_outlier({"recommend": "posterior_mean"})
    assert c.best[0] == outlier  # the best told value is the lucky one
    pick = c.recommend()
    ranked = sorted(truth.values(), reverse=True)
    assert pick != outlier and truth[pick] >= ranked[len(ranked) // 10], (truth[pick], ranked[:15])
    default, _, _ = _noisy_additive_with_a_lucky_outlier(None)
    assert default.recommend() == outlier  # the default reports the best told
    restored = make_controller("bayes", c.space, seed=0, settings={"recommend": "posterior_mean"})
    restored.load_state_dict(c.state_dict())
    assert restored.recommend() == pick


def test_recommendation_on_an_exact_evaluator_with_few_results_is_the_best_told():
    space = get_space("nas-bench-macro")
    c = make_controller("bayes", space, seed=0, settings={"recommend": "posterior_mean"})
    assert c.recommend() is None
    for value in (0.1, 0.5):
        c.tell(c.ask(), value)
    assert c.recommend() == c.best[0]


def test_lazy_refit_of_a_large_model_restores_exactly():
    """Above EXACT_FEATURES the posterior is refit once the new results are 1% of those fitted (issue 20's
    20 ms per ask); a state saved between two refits continues exactly."""
    from controllers.bayes_model import EXACT_FEATURES

    space = get_space("mnasnet")
    a = make_controller("bayes", space, seed=0, settings={"interactions": "adjacent"})
    assert a.features.num_features > EXACT_FEATURES
    rng = np.random.default_rng(0)
    for _ in range(229):
        a.tell(a.ask(), float(rng.random()))
    model = a._model
    assert model._fitted == 228 and not model.refit_due()  # the newest result waits (1 < 228 // 100)
    b = make_controller("bayes", space, seed=5, settings={"interactions": "adjacent"})
    b.load_state_dict(a.state_dict())
    rewards = rng.random(6)
    seqs = []
    for c in (a, b):
        seq = []
        for r in rewards:
            g = c.ask()
            seq.append(g)
            c.tell(g, float(r))
        seqs.append(seq)
    assert seqs[0] == seqs[1]


def _direct_nll_and_means(x, y, noise, a, b):
    """The same Gaussian process written out: Cov = a X X^T + (b + noise^2) I, the mean by generalised least squares."""
    cov = a * x @ x.T + (b + noise ** 2) * np.eye(len(y))
    inv = np.linalg.inv(cov)
    one = np.ones(len(y))
    mu = (one @ inv @ y) / (one @ inv @ one)
    r = y - mu
    nll = 0.5 * r @ inv @ r + 0.5 * np.linalg.slogdet(cov)[1]
    return nll, y - noise ** 2 * inv @ r


def test_known_noise_posterior_is_the_gaussian_process_of_maximum_likelihood():
    fm = FeatureMap([3, 3, 3, 3], False)
    rng = np.random.default_rng(3)
    codes = rng.integers(3, size=(40, 4))
    y = fm.score(rng.standard_normal(fm.num_features), codes) * 0.01 + 0.9 + 0.004 * rng.standard_normal(40)
    x = np.zeros((40, fm.num_features))
    np.put_along_axis(x, fm.indices(codes), 1.0, axis=1)
    means, info = known_noise_means(fm.indices(codes), fm.num_features, y, 0.004)
    nll, direct = _direct_nll_and_means(x, y, 0.004, info["signal"], info["residual"])
    assert means == pytest.approx(direct, abs=1e-9)
    spread = np.var(y)
    grid = [_direct_nll_and_means(x, y, 0.004, a, b)[0] for a in spread * SCALES[::4]
            for b in (0.0, *(spread * SCALES[::4]))]
    assert nll <= min(grid) + 1e-9  # no coarser grid point is more likely than the one chosen
    assert known_noise_means(fm.indices(codes), fm.num_features, y, 0.0)[0].tolist() == y.tolist()  # exact: as told


def test_auto_recommendation_uses_the_evaluators_noise_and_is_the_best_told_without_it():
    c, truth, outlier = _noisy_additive_with_a_lucky_outlier(None, noise=0.5)
    assert c.best[0] == outlier
    pick = c.recommend()
    ranked = sorted(truth.values(), reverse=True)
    assert pick != outlier and truth[pick] >= ranked[len(ranked) // 10], (truth[pick], ranked[:15])
    assert c.noise_best(0.5) == pick
    exact, _, _ = _noisy_additive_with_a_lucky_outlier(None, noise=0.0)
    assert exact.recommend() == outlier  # an exact evaluator: the best told
    told, _, _ = _noisy_additive_with_a_lucky_outlier({"recommend": "best_told"}, noise=0.5)
    assert told.recommend() == outlier
    own, _, _ = _noisy_additive_with_a_lucky_outlier({"noise": 0.5})  # the user's noise, no evaluator hint
    assert own.recommend() == pick
    restored = make_controller("bayes", c.space, seed=0, noise=0.5)
    restored.load_state_dict(c.state_dict())
    assert restored.recommend() == pick


@pytest.mark.parametrize("noise", [-0.1, float("nan"), True, "0.1"])
def test_a_bad_noise_hint_is_refused(noise):
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        make_controller("bayes", get_space("nas-bench-macro"), noise=noise)
