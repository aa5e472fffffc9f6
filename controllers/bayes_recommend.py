"""The ``bayes`` controller's recommendation: the told network of highest posterior mean, not of highest told value.

Two models, both reporting a told network (never an unseen one):

* :func:`known_noise_index` (``recommend: auto`` when the evaluator declares its noise, or ``settings.noise``):
  the controller's own first-order model as a Gaussian process plus a white residual for what is not additive,
  the evaluator's noise known.  With noise 0 it reports the best told value exactly.
* :func:`recommend_index` (``recommend: posterior_mean``): an exponentiated-Hamming GP whose noise is estimated
  by marginal likelihood -- for when nobody knows the noise.

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
#: The grid of the known-noise model's variances, relative to the told values' variance.
SCALES = np.logspace(-5.0, 1.0, 25)


def known_noise_means(rows: np.ndarray, num_features: int, y: np.ndarray, noise: float
                      ) -> tuple[np.ndarray, dict[str, float]]:
    """The posterior means of the told points under a known noise, and the chosen variances.

    The model: ``y = mu + x.w + r + e`` with ``x`` the one-hot features (``rows``: (n, k) indices of the
    active ones, :meth:`FeatureMap.indices`), ``w ~ N(0, a I)``, a white residual ``r ~ N(0, b I)`` (what is
    not additive: a network may sit above or below what its decisions predict), ``e ~ N(0, noise^2)`` the
    evaluator's noise, ``mu`` profiled.  ``a`` and ``b`` maximise the marginal likelihood over a grid relative
    to the told values' variance, so the rule has no scale of its own.  The residual and the noise look alike
    in the likelihood -- only the known noise tells them apart, which is why this rule needs it (Rasmussen &
    Williams 2006, section 2.2, with the linear kernel of section 2.1 and a nugget).  The posterior mean at the
    told points is ``y - noise^2 Cov^-1 (y - mu)``: a value is pulled toward what the rest of the told results
    say of its decisions by as much as the noise is large next to the residual.

    Cost: one thin SVD of the (n x features) one-hot matrix, then O(n) per grid point -- about 10 ms at 1,000
    told results on NAS-Bench-Macro.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    spread = float(np.var(y))
    if n < 3 or noise <= 0.0 or spread <= 0.0:
        return y.copy(), {"signal": float("nan"), "residual": float("nan"), "mean": float("nan")}
    x = np.zeros((n, num_features))
    np.put_along_axis(x, np.asarray(rows), 1.0, axis=1)
    u, sv, _ = np.linalg.svd(x, full_matrices=False)
    keep = sv > 1e-10 * sv[0]
    u, lam = u[:, keep], sv[keep] ** 2
    others = n - len(lam)  # eigenvalues 0 of x x^T
    one = np.ones(n)
    qy, q1 = u.T @ y, u.T @ one
    y_out, one_out = y - u @ qy, one - u @ q1
    yy, y1, oo = float(y_out @ y_out), float(y_out @ one_out), float(one_out @ one_out)
    best = None
    for a in spread * SCALES:
        for b in (0.0, *(spread * SCALES)):
            d, d0 = a * lam + b + noise ** 2, b + noise ** 2
            mu = (float(q1 @ (qy / d)) + y1 / d0) / (float(q1 @ (q1 / d)) + oo / d0)
            res = qy - mu * q1
            quad = float(np.sum(res ** 2 / d)) + (yy - 2.0 * mu * y1 + mu * mu * oo) / d0
            nll = 0.5 * quad + 0.5 * (float(np.sum(np.log(d))) + others * np.log(d0))
            if best is None or nll < best[0]:
                best = (nll, a, b, mu, res, d, d0)
    _, a, b, mu, res, d, d0 = best
    means = y - noise ** 2 * (u @ (res / d) + (y_out - mu * one_out) / d0)
    return means, {"signal": a, "residual": b, "mean": mu}


def known_noise_index(rows: np.ndarray, num_features: int, y: np.ndarray, noise: float) -> int:
    """Index of the told point of highest :func:`known_noise_means` (the first of ties: with noise 0, the best told)."""
    return int(np.argmax(known_noise_means(rows, num_features, y, noise)[0]))


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
