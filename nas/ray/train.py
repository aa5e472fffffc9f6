"""``nas train`` on Ray Train: a thin ``TorchTrainer`` around :func:`nas.train.loop.run_worker`.

In the Ray room (``nas.ray``): ``nas.train`` itself knows nothing of Ray.  ``fit`` starts a local Ray
(or joins ``address``), runs ``workers.count`` DDP workers (gloo on CPU, nccl
on GPU; Ray Train sets up the process group) and blocks until they finish.
Every epoch each worker hands its part of the checkpoint to ``ray.train.report``;
Ray Train persists them into one folder ``<output.dir>/<output.name>/epoch_NNNN``
and, when a later ``fit`` uses the same run dir, ``ray.train.get_checkpoint``
returns the newest one: that is ``--resume``, after a clean stop or a kill -9
alike.  A checkpoint counts once Ray Train has registered it (its
``checkpoint_manager_snapshot.json``): a kill in the moment between an epoch's
files landing and that record resumes from the checkpoint before.  On a multi-node cluster, ``output.dir`` (or ``output.storage``) and the
data path must be visible at the same path on every node.

A local Ray listens on 127.0.0.1 only (:mod:`nas.ray.local`, verified with
``ss -ltn`` in tests/test_train_ray.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

import ray
import ray.train
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from ..experiment.sections import OutputConfig
from ..experiment.train import WorkersConfig
from ..progress import JsonlTail
from ..train import checkpoint as ckpt
from ..train.loop import TrainJob, run_worker
from .local import ray_session

log = logging.getLogger(__name__)

class TrainingFailed(RuntimeError):
    """A worker raised or died: the message is the first line of its error."""


class _RaySession:
    """The loop's :class:`~nas.train.loop.Session` inside a Ray Train worker."""

    def __init__(self) -> None:
        context = ray.train.get_context()
        self.rank = context.get_world_rank()
        self.world = context.get_world_size()
        self.device = ray.train.torch.get_device()

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[str | None]:
        found = ray.train.get_checkpoint()
        if found is None:
            yield None
            return
        with found.as_directory() as folder:
            yield folder

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        if checkpoint_dir is None:
            ray.train.report(metrics)
            return
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir),
                         checkpoint_dir_name=ckpt.epoch_dir_name(int(metrics["epoch"])))


def _train_fn(config: dict) -> None:
    run_worker(config["job"], _RaySession())


def _key(metrics: dict) -> tuple:
    """(attempt, epoch): a resumed run rewrites epochs the killed attempt had logged past its last checkpoint."""
    return metrics.get("attempt"), metrics["epoch"]


def fit(job: TrainJob, workers: WorkersConfig, output: OutputConfig, address: str | None = None,
        on_epoch: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Train ``job`` on ``workers.count`` Ray Train workers; resumes from the run dir's newest checkpoint.

    Returns the final metrics that rank 0 wrote to ``result.json`` (test accuracy, which weights were saved).
    """
    run_dir = Path(job.run_dir)
    storage = output.storage or output.dir
    with ray_session(address, workers.num_cpus):
        gpu = workers.gpu == "on" or (workers.gpu == "auto" and ray.cluster_resources().get("GPU", 0) >= 1)
        if gpu and workers.gpu == "on" and ray.cluster_resources().get("GPU", 0) < workers.count:
            raise ValueError(f"workers.gpu=on needs {workers.count} GPUs, the Ray cluster has "
                             f"{ray.cluster_resources().get('GPU', 0):g}; lower workers.count or set gpu: auto")
        trainer = TorchTrainer(
            _train_fn, train_loop_config={"job": job},
            scaling_config=ScalingConfig(num_workers=workers.count, use_gpu=gpu,
                                         resources_per_worker={"CPU": workers.cpus}),
            run_config=RunConfig(name=output.name, storage_path=storage,
                                 checkpoint_config=CheckpointConfig(num_to_keep=job.train.keep_checkpoints),
                                 failure_config=FailureConfig(max_failures=workers.max_failures)))
        progress = JsonlTail(run_dir / ckpt.METRICS, on_epoch, _key) if on_epoch else None
        if progress:
            progress.start()
        try:
            trainer.fit()
        except ray.train.TrainingFailedError as err:
            raise TrainingFailed(f"training failed: {_first_line(err)}") from None
        finally:
            if progress:
                progress.finish()
    return json.loads((run_dir / ckpt.RESULT).read_text(encoding="utf-8"))


def _first_line(err: BaseException) -> str:
    """The innermost worker error of a Ray Train failure, as one line."""
    cause = err
    for attr in ("worker_failures", "controller_failure"):
        found = getattr(err, attr, None)
        if isinstance(found, dict) and found:
            cause = next(iter(found.values()))
        elif isinstance(found, BaseException):
            cause = found
    lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
    tail = [ln for ln in lines if ln[:1] != " " and ("Error" in ln or "error" in ln)]
    return (tail[-1] if tail else lines[-1] if lines else type(cause).__name__)[:500]
