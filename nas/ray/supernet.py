"""Distributed supernet training through Ray Train (the Ray room; ``nas.supernet`` itself knows nothing of Ray).

``train_distributed(exp, workers=N)`` runs :func:`nas.supernet.train.train_supernet` on ``N``
workers of a ``ray.train.torch.TorchTrainer``: Ray Train starts the workers, initialises the
``torch.distributed`` process group (gloo on a CPU, nccl with GPUs) and sets each worker's
device; the loop itself is the same plain function a single process runs.  Every worker
trains on its own shard of every batch; rank 0 writes the checkpoint into the run dir after
every epoch (on a multi-node cluster ``output.dir`` must be a filesystem all nodes share).

Without ``ray.address`` a local Ray is started (``address="local"``: never a stale cluster), bound to
127.0.0.1 only (:mod:`nas.ray.local`), and stopped again.  Rank 0 appends every epoch to the run dir's
``metrics.jsonl``; ``progress`` gets each epoch once (``nas.progress.JsonlTail``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import ray
import ray.train
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from ..experiment.supernet import SupernetExperiment, experiment_from_dict
from ..progress import METRICS, JsonlTail
from ..supernet.checkpoint import read_checkpoint
from ..supernet.train import TrainSummary, train_supernet
from .local import ray_session

log = logging.getLogger(__name__)

def _loop(config: dict[str, Any]) -> None:
    """``train_loop_per_worker``: rebuild the experiment, take rank, world size and device from Ray Train."""
    import torch

    exp = experiment_from_dict(config["experiment"])
    torch.set_num_threads(max(1, int(exp.supernet.cpus_per_worker)))
    ctx = ray.train.get_context()
    device = ray.train.torch.get_device() if config["use_gpu"] else torch.device("cpu")
    train_supernet(exp, resume=config["resume"], rank=ctx.get_world_rank(), world_size=ctx.get_world_size(),
                   device=device, report=lambda metrics: ray.train.report(metrics))


def _use_gpu(exp: SupernetExperiment) -> bool:
    device = exp.proxy.device
    if device == "auto":
        return bool(ray.cluster_resources().get("GPU", 0))
    return device.startswith("cuda")


def train_distributed(exp: SupernetExperiment, workers: int | None = None, resume: bool = False,
                      progress: Callable[[str], None] | None = None,
                      on_epoch: Callable[[dict], None] | None = None) -> TrainSummary:
    """Train the supernet of ``exp`` on ``workers`` Ray Train workers (default ``supernet.workers``);
    ``on_epoch(metrics)`` once per finished epoch."""
    workers = workers or exp.supernet.workers
    cfg = exp.supernet
    if cfg.batch_size % workers:
        raise ValueError(f"supernet.batch_size={cfg.batch_size} must be divisible by --workers {workers}; "
                         f"e.g. --set supernet.batch_size={cfg.batch_size // workers * workers or workers}")
    with ray_session(exp.ray.address):
        use_gpu = _use_gpu(exp)
        exp.run_dir.mkdir(parents=True, exist_ok=True)
        storage = exp.output.storage or str(exp.run_dir)
        trainer = TorchTrainer(
            _loop,
            train_loop_config={"experiment": exp.to_dict(), "resume": resume, "use_gpu": use_gpu},
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu,
                                         resources_per_worker={"CPU": cfg.cpus_per_worker,
                                                               **({"GPU": 1} if use_gpu else {})}),
            run_config=RunConfig(name="ray_train", storage_path=storage,
                                 failure_config=FailureConfig(max_failures=exp.ray.max_failures)),
        )
        if progress:
            progress(f"Ray Train: {workers} worker(s), {'nccl on GPUs' if use_gpu else 'gloo on CPUs'}")
        # an ensemble's members each log epochs 1..N: a row is its (member, epoch)
        tail = JsonlTail(exp.run_dir / METRICS, on_epoch, key=lambda row: (row.get("member", 0), row.get("epoch"))) \
            if on_epoch else None
        if tail:
            tail.start()
        try:
            result = trainer.fit()
        finally:
            if tail:
                tail.finish()
        if result.error is not None:
            raise result.error
    meta = read_checkpoint(exp.checkpoint_path)["meta"]
    return TrainSummary(int(meta["epoch"]), str(exp.checkpoint_path), list(meta["history"]))
