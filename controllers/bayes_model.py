"""The surrogate of the ``bayes`` controller: one-hot decision features and Bayesian linear regression.

Features of a genotype (its integer decisions ``c_0 .. c_{T-1}``, ``SearchSpace.encode`` order):

* unary: one indicator per (decision, option) -- ``sum(sizes)`` features;
* pairwise (``interactions='adjacent'``): one indicator per (decision t, option, decision t+1,
  option) -- the second-order terms of BOCS (Baptista & Poloczek 2018, ICML, section 3) restricted to
  neighbouring decisions, which in a factorized space are the fields of one block and of two
  consecutive blocks.  With a chain of pairwise terms the maximiser of a sampled model over the whole
  space is exact dynamic programming (:meth:`FeatureMap.argmax`).

The regression: ``y = x.w + e``, prior ``w ~ N(0, diag(1/alpha))`` (a larger precision on pairwise
terms, so the model starts additive), noise precision ``beta`` set by MacKay's evidence fixed point
(Bishop 2006, section 3.5.2).  The targets are the ranks of the told rewards mapped to normal scores
(a Gaussian copula, as in HEBO's output warping), so a long tail of bad networks or a reward's scale
does not matter.  ``X^T X`` is kept incrementally; a posterior costs one Cholesky of a
(features x features) matrix.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

_NORMAL = NormalDist()
#: Up to this many features the posterior is refit after every new result (every shipped space's first-order
#: model; nas-bench-macro with adjacent pairs); above, lazily (:meth:`LinearPosterior.refit_due`).
EXACT_FEATURES = 256


def normal_scores(rewards) -> np.ndarray:
    """Normal scores of the ranks of ``rewards`` (tied rewards share their mean rank): ``Phi^-1((rank + 0.5) / n)``."""
    rewards = np.asarray(rewards, dtype=float)
    values, inverse, counts = np.unique(rewards, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - counts + (counts - 1) / 2.0
    n = len(rewards)
    return np.array([_NORMAL.inv_cdf((r + 0.5) / n) for r in mean_rank])[inverse]


class FeatureMap:
    """Indices of the one-hot (and adjacent pairwise) features of decision codes."""

    def __init__(self, sizes: list[int], pairwise: bool) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.unary_offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.num_unary = int(self.sizes.sum())
        self.pairwise = bool(pairwise) and len(sizes) > 1
        if self.pairwise:
            blocks = self.sizes[:-1] * self.sizes[1:]
            self.pair_offsets = self.num_unary + np.concatenate([[0], np.cumsum(blocks)[:-1]])
            self.num_features = self.num_unary + int(blocks.sum())
        else:
            self.pair_offsets = np.zeros(0, dtype=np.int64)
            self.num_features = self.num_unary

    @staticmethod
    def pair_count(sizes: list[int]) -> int:
        return int(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))

    def indices(self, codes: np.ndarray) -> np.ndarray:
        """(m, T) codes -> (m, k) indices of the active features (k = T, or 2T-1 with pairs)."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
        unary = self.unary_offsets + codes
        if not self.pairwise:
            return unary
        pairs = self.pair_offsets + codes[:, :-1] * self.sizes[1:] + codes[:, 1:]
        return np.concatenate([unary, pairs], axis=1)

    def score(self, weights: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return weights[self.indices(codes)].sum(axis=1)

    def argmax(self, weights: np.ndarray) -> list[int]:
        """The codes maximising ``x.w`` over the whole space: exact (Viterbi over the chain of decisions)."""
        unary = [weights[o:o + s] for o, s in zip(self.unary_offsets, self.sizes)]
        if not self.pairwise:
            return [int(np.argmax(u)) for u in unary]
        best = unary[0].copy()          # best value of a prefix ending in each option of decision t
        back: list[np.ndarray] = []
        for t in range(1, len(self.sizes)):
            a, b = self.sizes[t - 1], self.sizes[t]
            pair = weights[self.pair_offsets[t - 1]:self.pair_offsets[t - 1] + a * b].reshape(a, b)
            total = best[:, None] + pair
            back.append(np.argmax(total, axis=0))
            best = total.max(axis=0) + unary[t]
        codes = [int(np.argmax(best))]
        for pointers in reversed(back):
            codes.append(int(pointers[codes[-1]]))
        return codes[::-1]


def lower_inverse(lower: np.ndarray, leaf: int = 48) -> np.ndarray:
    """The inverse of a lower-triangular matrix by 2x2 blocks (``[[A, 0], [B, C]]^-1 = [[A^-1, 0], [-C^-1 B A^-1,
    C^-1]]``): about a third of the work of a general inverse (numpy has no triangular inverse), all in
    matrix products."""
    n = len(lower)
    if n <= leaf:
        return np.tril(np.linalg.inv(lower))
    k = n // 2
    top, bottom = lower_inverse(lower[:k, :k], leaf), lower_inverse(lower[k:, k:], leaf)
    out = np.zeros_like(lower)
    out[:k, :k] = top
    out[k:, k:] = bottom
    out[k:, :k] = -(bottom @ lower[k:, :k]) @ top
    return out


class LinearPosterior:
    """Bayesian linear regression on the features, built from (codes, reward) rows."""

    def __init__(self, features: FeatureMap, pair_precision: float) -> None:
        self.features = features
        d = features.num_features
        self.alpha = np.ones(d)
        self.alpha[features.num_unary:] = pair_precision
        self._rows: list[np.ndarray] = []
        self._rewards: list[float] = []
        self._xtx = np.zeros((d, d))
        self._fitted = 0  # rows the current posterior was fitted on
        self._cache: tuple[np.ndarray, np.ndarray, float] | None = None  # (mean, L^-1, beta)
        self.next_beta = 1.0

    def __len__(self) -> int:
        return len(self._rewards)

    def add(self, codes: list[int], reward: float) -> None:
        idx = self.features.indices(np.asarray(codes))[0]
        self._rows.append(idx)
        self._rewards.append(float(reward))
        self._xtx[np.ix_(idx, idx)] += 1.0

    def targets(self, rows: int | None = None) -> np.ndarray:
        """:func:`normal_scores` of the first ``rows`` rewards (all: None)."""
        return normal_scores(self._rewards[:rows])

    def refit_due(self) -> bool:
        """Refit after every new result up to :data:`EXACT_FEATURES` features; above, once the new results are
        1% of those fitted (at 1,000 results on the MnasNet space with adjacent pairs, 389 features, one
        Cholesky per 10 asks instead of one per ask; the posterior then misses at most 1% of the results)."""
        new = len(self._rewards) - self._fitted
        if self._cache is None or self.features.num_features <= EXACT_FEATURES:
            return new > 0 or self._cache is None
        return new >= max(1, self._fitted // 100)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, inverse Cholesky factor ``L^-1`` of the precision) of the weights, refit when :meth:`refit_due`.

        The noise precision ``beta`` takes one step of MacKay's fixed point per new posterior, from
        the estimate of the previous one (``next_beta``, saved with the state): one Cholesky and one
        triangular inverse (:func:`lower_inverse`) per posterior, every other product ``O(features^2)``.
        """
        if not self.refit_due():
            return self._cache[0], self._cache[1]
        return self._fit(len(self._rewards))

    def _fit(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The posterior of the first ``count`` rows (all but on a restore)."""
        y = self.targets(count)
        rows = np.asarray(self._rows[:count])
        xtx = self._xtx
        if count < len(self._rows):
            xtx = np.zeros_like(self._xtx)
            for idx in self._rows[:count]:
                xtx[np.ix_(idx, idx)] += 1.0
        xty = np.bincount(rows.ravel(), weights=np.repeat(y, rows.shape[1]), minlength=self.features.num_features)
        beta = self.next_beta
        chol = np.linalg.cholesky(beta * xtx + np.diag(self.alpha))
        inverse = lower_inverse(chol)
        mean = inverse.T @ (inverse @ (beta * xty))
        residual = float(np.sum((y - mean[rows].sum(axis=1)) ** 2))
        gamma = float(np.sum(1.0 - self.alpha * np.sum(inverse ** 2, axis=0)))  # well-determined parameters
        if count > gamma + 1.0:
            self.next_beta = min(max((count - gamma) / max(residual, 1e-9), 0.1), 1e4)
        self._cache, self._fitted = (mean, inverse, beta), count
        return mean, inverse

    def state(self) -> dict:
        """What besides the rows a restored posterior needs: the ``beta`` of the current posterior (if any), the
        rows it was fitted on and the ``beta`` the next one starts from."""
        cached = None if self._cache is None else self._cache[2]
        return {"cached_beta": cached, "next_beta": self.next_beta, "fitted": self._fitted}

    def load_state(self, state: dict) -> None:
        """After the rows were added again: the same current posterior and the same next start."""
        if state["cached_beta"] is not None:
            self.next_beta = float(state["cached_beta"])
            self._fit(int(state.get("fitted", len(self._rewards))))  # saved before lazy refits: all rows
        self.next_beta = float(state["next_beta"])

    def thompson(self, rng: np.random.Generator) -> np.ndarray:
        """Weights drawn from the posterior: ``mean + L^-T z``."""
        mean, inverse = self.posterior()
        return mean + inverse.T @ rng.standard_normal(len(mean))
