"""Shared pytest fixtures (keep generic: any test module may use them)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator (the project never uses the global RNG)."""
    return np.random.default_rng(0)
