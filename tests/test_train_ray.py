"""``nas train`` on Ray Train: 2 DDP workers on CPU, loopback-only local Ray, kill -9 and --resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from nas.data import DataConfig
from nas.experiment.sections import OutputConfig
from nas.train import checkpoint as ckpt
from nas.experiment.train import WorkersConfig
from tests.train_helpers import tiny_job

pytestmark = [pytest.mark.ray, pytest.mark.training]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local_ray():
    from nas.ray.local import ray_session

    with ray_session(num_cpus=2) as started:
        assert started
        yield


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return seen


def test_local_ray_listens_on_loopback_only(local_ray):
    import ray

    if subprocess.run(["which", "ss"], capture_output=True).returncode:
        pytest.skip("needs ss (iproute2)")
    node = ray._private.worker._global_node
    ours = {p.process.pid for infos in node.all_processes.values() for p in infos} | {os.getpid()}
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    checked = []
    for line in out.splitlines():
        fields = line.split()
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        if any(_ancestors(pid) & ours for pid in pids):
            checked.append(fields[3])
    assert len(checked) >= 3, out  # GCS, raylet, this driver's core worker (at least)
    assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]", "[::1]") for addr in checked), checked


def test_two_workers_one_epoch(local_ray, tmp_path):
    from nas.ray.train import fit

    run_dir = tmp_path / "ddp"
    job = tiny_job(run_dir, data=DataConfig(holdout=200), batch_size=64, epochs=1)  # all 1,800 built-in images
    seen = []
    final = fit(job, WorkersConfig(count=2), OutputConfig(dir=str(tmp_path), name="ddp"), on_epoch=seen.append)
    (epoch,) = [json.loads(line) for line in (run_dir / ckpt.METRICS).read_text().splitlines()]
    assert [m["epoch"] for m in seen] == [1]
    assert epoch["shard_overlap"] == 0  # the two workers trained on disjoint halves
    assert epoch["images"] == 28 * 64  # 28 steps of 32 images on each of 2 workers
    assert epoch["replica_max_diff"] == 0.0  # DDP kept the replicas' weights identical
    assert epoch["loss_end"] < epoch["loss_start"]
    assert 0.0 <= final["test_ema_accuracy"] <= 1.0 and final["weights"] == "ema"
    assert (run_dir / ckpt.checkpoints(run_dir)[-1] / ckpt.rng_file(1)).is_file()  # rank 1's part of the checkpoint
    model, _ = ckpt.load_trained(run_dir)
    assert sum(p.numel() for p in model.parameters()) > 0


def _cli(config: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nas.cli", "train", "b0", str(config), *extra], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_gone(pgid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def _registered(run_dir: Path, name: str) -> bool:
    """Whether Ray Train's checkpoint manager has recorded checkpoint folder ``name`` of the run."""
    try:
        snapshot = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
    except (OSError, ValueError):
        return False
    return any(r.get("checkpoint_dir_name") == name for r in snapshot.get("checkpoint_results", []))


#: Enough epochs that the kill after epoch 1's registered checkpoint lands before the end on a quiet machine
#: too (Ray Train registers a checkpoint a moment after its files; 3 epochs could all finish meanwhile).
EPOCHS = 6


def test_kill9_and_resume(tmp_path):
    """SIGKILL a `nas train` run mid-epoch; --resume continues after the last checkpoint.

    The whole process group is killed: SIGKILL to the driver alone leaves its local Ray's processes
    running for more than 30 s here (Ray does not fate-share them with a killed driver).
    """
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "model": {"width": 0.25, "resolution": 32, "stem_stride": 1},
        "train": {"epochs": EPOCHS, "batch_size": 32, "optimizer": "sgd", "lr": 6.4, "warmup_epochs": 0,
                  "bn_decay": 0.9,
                  "ema_decay": 0.9, "crop": "pad", "augment": "randaugment", "eval_crop": 1.0},
        "data": {"train_limit": 384, "holdout": 64}, "workers": {"count": 2, "num_cpus": 2},
        "output": {"dir": str(tmp_path), "name": "killed"}}))
    run_dir = tmp_path / "killed"
    first = _cli(config, "--quiet")
    try:
        deadline = time.monotonic() + 150
        # kill once Ray Train has registered epoch 1's checkpoint (its files land first; a kill between the two
        # resumes from the previous registered checkpoint, here from scratch -- see nas/ray/train.py)
        while not _registered(run_dir, "epoch_0001"):
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no checkpoint of epoch 1 in time"
            time.sleep(0.2)
        # kill -9 the whole job: the driver and the local Ray it started (its process group), no cleanup runs
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
        assert first.returncode == -signal.SIGKILL
        assert _wait_gone(first.pid, 30), "processes of the killed run are still alive"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    done_before = [json.loads(line)["epoch"] for line in (run_dir / ckpt.METRICS).read_text().splitlines()]
    assert done_before and done_before[-1] < EPOCHS, done_before
    second = _cli(config, "--resume")
    out, err = second.communicate(timeout=240)
    assert second.returncode == 0, err[-3000:]
    history = [json.loads(line) for line in (run_dir / ckpt.METRICS).read_text().splitlines()]
    epochs = [h["epoch"] for h in history]
    assert epochs == list(range(1, EPOCHS + 1))  # none repeated, none lost
    resumed = [h["epoch"] for h in history if h["attempt"] == 2]
    assert resumed and resumed[0] == max(h["epoch"] for h in history if h["attempt"] == 1) + 1
    assert [int(line.split()[1].split("/")[0]) for line in err.splitlines() if line.startswith("epoch ")] == resumed
    assert "ETA" in err and "test accuracy" in out
    state = torch.load(ckpt.checkpoints(run_dir)[-1] / ckpt.STATE, weights_only=True)
    assert state["epoch"] == EPOCHS and state["schedule"]["step"] == EPOCHS * (384 // 2 // 16)
    assert (run_dir / ckpt.WEIGHTS).is_file()
