"""A search's safety and its run dir's life: loopback-only Ray, resume where the run dir is, torn rows.

One local Ray for the module, started the way ``nas search`` starts it (``nas.driver.start_local_ray``).
"""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from nas.experiment import load_experiment
from nas.search import results
from net_helpers import is_loopback, listening, process_tree
from search_helpers import run_search, small

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    from nas.driver import start_local_ray

    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 3-trial search (its run dir is copied by the tests that change it)."""
    tmp = tmp_path_factory.mktemp("finished")
    outcome = run_search(load_experiment(data=small(tmp, budget={"samples": 3})))
    assert outcome.trials == 3
    return outcome.run_dir


def test_the_local_ray_listens_on_loopback_only(finished_run):
    import ray

    sockets = listening(process_tree(os.getpid()))
    # The GCS, the raylet (2 ports), this driver's and the reused workers' gRPC servers at least.
    assert len(sockets) >= 5, sockets
    outside = [s for s in sockets if not is_loopback(s[1])]
    assert outside == [], f"listening beyond loopback: {outside}"
    assert ray.util.get_node_ip_address() == "127.0.0.1"
