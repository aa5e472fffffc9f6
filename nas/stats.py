"""Small statistics shared by the benchmarks and the latency validation (numpy only)."""

from __future__ import annotations

import numpy as np


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tie = values == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks


def spearman(a, b) -> float:
    """Spearman's rank correlation: Pearson correlation of the (tie-averaged) ranks; nan if undefined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"spearman needs two sequences of equal length >= 2, got {a.size} and {b.size}")
    ra, rb = rank(a), rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a, b) -> float:
    """Kendall's tau-b (ties in either sequence corrected, as scipy.stats.kendalltau); nan if undefined.

    ``(concordant - discordant) / sqrt((n0 - ties_a) * (n0 - ties_b))`` over all ``n0 = n(n-1)/2`` pairs.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"kendall needs two sequences of equal length >= 2, got {a.size} and {b.size}")
    i, j = np.triu_indices(a.size, k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    pairs_a, pairs_b = np.count_nonzero(da), np.count_nonzero(db)
    if pairs_a == 0 or pairs_b == 0:
        return float("nan")
    return float(np.sum(da * db) / np.sqrt(float(pairs_a) * float(pairs_b)))
