"""Rank statistics of nas.stats, by hand."""

from __future__ import annotations

import math

import pytest

from nas.stats import kendall, spearman


def test_kendall_by_hand():
    assert kendall([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert kendall([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant pair
    # tau-b with a tie in the first sequence: S = 5, 5 untied pairs in a, 6 in b (scipy: 0.9128709)
    assert kendall([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(30))
    assert math.isnan(kendall([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal length >= 2"):
        kendall([1], [2])
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
