"""Ray Train: two CPU workers (gloo) train one supernet on different shards and end with identical weights."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
from net_helpers import is_loopback, listening, process_tree

from nas.supernet import load_supernet_experiment, read_checkpoint

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    from nas.ray.local import start_local_ray

    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_two_workers_train_different_shards_to_identical_weights(tmp_path, local_ray):
    """Epoch 1 one-shot, then (``few_shot: 1``) split into sub-supernets: both stay in step across workers."""
    from nas.ray.supernet import train_distributed

    exp = load_supernet_experiment(data={
        "space": "tiny", "data": {"kind": "builtin", "holdout": 100, "train_limit": 256},
        "proxy": {"resolution": 32, "stem_stride": 2, "width": 0.25, "depth": 0.5, "device": "cpu"},
        "supernet": {"epochs": 2, "batch_size": 64, "calib_batches": 1, "calib_batch_size": 64, "few_shot": 1},
        "output": {"dir": str(tmp_path), "name": "ddp"}})
    summary = train_distributed(exp, workers=2)
    sockets = listening(process_tree(os.getpid()))  # the local Ray and what Ray Train started in it
    assert sockets and all(is_loopback(ip) for _, ip, _ in sockets), sockets
    assert summary.epochs == 2 and [h["epoch"] for h in summary.history] == [1, 2]
    meta = read_checkpoint(exp.checkpoint_path)["meta"]
    assert meta["world_size"] == 2 and meta["epoch"] == 2
    assert meta["split"] == {"decision": 0, "parts": 4}  # the tiny space's b1_op: 4 options
    records = [json.loads((exp.run_dir / "workers" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in records] == [0, 1] and all(r["world_size"] == 2 for r in records)
    a, b = (set(r["last_epoch_indices"]) for r in records)
    # 4 steps of a global batch of 64: each worker 32 images a step, disjoint, together the whole epoch
    assert len(a) == len(b) == 128 and not a & b and len(a | b) == 256
    assert records[0]["weights_digest"] == records[1]["weights_digest"]
    assert records[0]["buffers_digest"] == records[1]["buffers_digest"]
