"""Shared pytest fixtures (keep generic: any test module may use them)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator (the project never uses the global RNG)."""
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def local_ray():
    """A 2-CPU local Ray for one test module, started the way effnas starts one (loopback only).

    Modules that need other resources (fake GPUs, more CPUs) define their own ``local_ray``."""
    import ray

    from nas.ray.local import start_local_ray

    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def pytest_sessionfinish(session, exitstatus) -> None:
    """The fast set (Ray tests deselected) must never import Ray: fail the session if it did."""
    import sys

    markexpr = session.config.getoption("markexpr", "") or ""
    if "not ray" in markexpr and "ray" in sys.modules and session.testscollected:
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            "ERROR: the fast test set (-m 'not ray ...') imported Ray; import it only inside Ray tests")
        session.exitstatus = 1


# Test modules that import Ray at import time (every test in them is marked ``ray``): the fast set
# (``-m 'not ray ...'``) does not collect them at all, so collecting it never imports Ray.
RAY_ONLY_MODULES = frozenset({"test_ray_searchers_ported.py"})


def pytest_ignore_collect(collection_path, config) -> bool | None:
    markexpr = config.getoption("markexpr", "") or ""
    if collection_path.name in RAY_ONLY_MODULES and "not ray" in markexpr:
        return True
    return None
