"""A short search on a real 2-node Ray cluster (ray.cluster_utils.Cluster) on this machine."""

from __future__ import annotations

import os

import pytest

from nas.search import results
from nas.experiment.search import load_experiment
from search_helpers import run_search, small

pytestmark = pytest.mark.ray


def test_search_spreads_over_two_nodes(tmp_path, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=False)
    try:
        cluster.add_node(num_cpus=1)
        cluster.add_node(num_cpus=1)
        cfg = small(tmp_path, budget={"samples": 4})
        outcome = run_search(load_experiment(data=cfg), address=cluster.address)
        assert not ray.is_initialized()  # the driver disconnects, the cluster stays up
        rows = results.read_trials(outcome.run_dir)
        assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
        nodes = {r["node_id"] for r in rows}
        assert len(nodes) == 2, f"expected trials on both nodes, saw {nodes}"
    finally:
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
