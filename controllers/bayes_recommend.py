"""The ``bayes`` controller's recommendation: the told network of highest posterior mean, not of highest told value.

Under a noisy evaluator the best *told* value is increasingly a lucky draw as a search goes on (the
maximum of many noisy values is biased up).  The BO literature recommends by the model instead: report the
evaluated point with the best posterior (kriging) mean (Picheny, Wagner & Ginsbourger 2013, "A benchmark of
kriging-based infill criteria for noisy optimization", Struct. Multidisc. Optim. 48, section 2.3; Frazier 2018,
"A Tutorial on Bayesian Optimization", arXiv:1807.02811, section 5 on noisy evaluations).

The model here is a Gaussian process over the told networks' decision codes, fitted to the same normal scores
of the reward ranks the controller learns from:

    y = f(x) + e,   f ~ GP(0, s2 * rho ** hamming(x, x')),   e ~ N(0, s2 * g)

an exponentiated Hamming (overlap) kernel, as used for categorical BO (COMBO, Oh et al. 2019, NeurIPS; CoCaBO,
Ru et al. 2020, ICML).  ``rho`` and the noise ratio ``g`` are set by maximum marginal likelihood over a grid
(``s2`` profiled out in closed form), so the amount of shrinkage is the data's own estimate of its noise: an
isolated lucky value is pulled toward what its neighbours say.  Repeated evaluations of one network
(``allow_repeats``) are replicates and inform ``g`` directly.  On NAS-Bench-Macro the likelihood also finds "noise" in the exact objectives (their rough,
non-additive part looks like a nugget), so this rule is an option (``recommend: posterior_mean``), not the
default.  The posterior mean at the told points is ``y - g * (C + g I)^-1 y`` with ``C = rho ** H``.

Cost: one symmetric eigendecomposition of the (n x n) kernel per ``rho`` (every ``g`` then costs O(n^2)),
on at most :data:`MAX_POINTS` told results (the best by told value; about 0.1 s at 500 results).
It is called once per recommendation, never per ask.
"""

from __future__ import annotations

import numpy as np

RHOS = (0.2, 0.4, 0.6, 0.8, 0.9)
NOISE_RATIOS = tuple(float(g) for g in np.logspace(-4, 1, 26))
MAX_POINTS = 1000


def posterior_means(codes: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """The GP posterior mean of ``f`` at each told point and the chosen hyperparameters.

    ``codes``: (n, T) integer decisions; ``y``: (n,) targets (centred, unit scale).  Fewer than 3 points
    leave the values as they are (no noise can be estimated).
    """
    codes = np.asarray(codes)
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 3:
        return y.copy(), {"rho": float("nan"), "noise_ratio": 0.0}
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
    best: tuple[float, float, float, np.ndarray] | None = None
    for rho in RHOS:
        lam, q = np.linalg.eigh(rho ** hamming)
        lam = np.clip(lam, 0.0, None)
        qy2 = (q.T @ y) ** 2
        for g in NOISE_RATIOS:
            quad = float(np.sum(qy2 / (lam + g)))  # y^T (C + g I)^-1 y
            nll = 0.5 * n * np.log(max(quad / n, 1e-300)) + 0.5 * float(np.sum(np.log(lam + g)))
            if best is None or nll < best[0]:
                best = (nll, rho, g, q @ ((q.T @ y) / (lam + g)))
    _, rho, g, alpha = best
    return y - g * alpha, {"rho": rho, "noise_ratio": g}


def recommend_index(codes: np.ndarray, y: np.ndarray) -> tuple[int, dict[str, float]]:
    """Index (into the rows given) of the told point with the highest posterior mean."""
    y = np.asarray(y, dtype=float)
    keep = np.argsort(-y, kind="stable")[:MAX_POINTS]
    means, info = posterior_means(np.asarray(codes)[keep], y[keep])
    return int(keep[int(np.argmax(means))]), info
