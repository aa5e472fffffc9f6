"""The training loop of ``nas train``: one plain function per worker, with its distributed edges injected.

``run_worker(job, session)`` is what every worker runs (Ray Train calls it through
``nas.ray.train``; :class:`LocalSession` runs it in this process with one
worker).  The session supplies the rank, the world size, the device, the latest
checkpoint and ``report``; the loop knows nothing of Ray.  Data parallelism:

* every worker loads the dataset (``nas.data.load_data``, cached per process) and
  trains on its shard: one seeded permutation per epoch, shared by all ranks,
  of which rank r takes positions r, r + N, ...; batch = global batch / N;
* the model is wrapped in DDP when N > 1 (gradients averaged, BatchNorm
  statistics broadcast from rank 0); evaluation is sharded the same way and
  the counts summed;
* each epoch ends with a check that all replicas hold the same weights
  (``replica_max_diff``) and that the shards were disjoint (``shard_overlap``),
  then every rank writes its part of the checkpoint and reports.

Randomness: the model is initialised from ``seed`` (the same on every rank);
afterwards torch's global generator (dropout, stochastic depth) is seeded with
``seed + rank`` and each worker owns a generator for augmentation; all of them
are saved in the checkpoint, so a resumed run continues the same streams.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Protocol

import torch
import torch.distributed as dist
import torch.nn.functional as F

from efficientnet import ModelSpec, build_model
from nas.data import DataConfig, load_data
from nas.proxy.train import zero_init
from nas.proxy.ops import device_split
from search_spaces import Genotype

from . import checkpoint as ckpt
from ..experiment.train import TrainConfig
from .optim import EfficientNetSchedule, ModelEma, make_optimizer
from .pipeline import Augmenter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs (plain, picklable): the model to build, the recipe, the data, the run dir."""

    genotype: str
    width: float
    depth: float
    resolution: int
    dropout: float
    stem_stride: int
    padding: str
    train: TrainConfig
    data: DataConfig
    run_dir: str
    threads: int = 1

    def spec(self, num_classes: int) -> ModelSpec:
        return ModelSpec(Genotype.from_string(self.genotype), width=self.width, depth=self.depth,
                         resolution=self.resolution, dropout=self.dropout, num_classes=num_classes,
                         stem_stride=self.stem_stride)


class Session(Protocol):
    """The edge between the loop and whatever runs it (Ray Train, or this process)."""

    rank: int
    world: int
    device: torch.device

    def latest_checkpoint(self) -> ContextManager[str | None]: ...

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None: ...


class LocalSession:
    """One worker in this process: checkpoints go to ``<run_dir>/epoch_NNNN`` (the newest ``keep`` kept)."""

    rank, world = 0, 1

    def __init__(self, run_dir: str | Path, keep: int = 2, device: str | torch.device | None = None,
                 on_epoch: Callable[[dict], None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.keep = keep
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.on_epoch = on_epoch

    @contextlib.contextmanager
    def latest_checkpoint(self) -> Iterator[str | None]:
        found = ckpt.checkpoints(self.run_dir)
        yield str(found[-1]) if found else None

    def report(self, metrics: dict[str, Any], checkpoint_dir: str | None) -> None:
        if checkpoint_dir is not None:
            target = self.run_dir / ckpt.epoch_dir_name(int(metrics["epoch"]))
            if target.exists():
                raise FileExistsError(f"checkpoint {target} exists already: an epoch would be trained twice")
            _copy_tree(Path(checkpoint_dir), target)
            for old in ckpt.checkpoints(self.run_dir)[:-self.keep]:
                _remove_tree(old)
            if self.on_epoch is not None:
                self.on_epoch(dict(metrics))


def run_worker(job: TrainJob, session: Session) -> dict[str, Any]:
    """Train ``job`` as worker ``session.rank`` of ``session.world``; returns the final metrics (rank 0's view)."""
    w = _Worker(job, session)
    writer = _MetricsWriter(w.run_dir, w.history, w.start_epoch) if w.rank == 0 else None
    try:
        for epoch in range(w.start_epoch + 1, job.train.epochs + 1):
            metrics = w.epoch(epoch)
            w.history.append(metrics)
            with tempfile.TemporaryDirectory(prefix="effnas-ckpt-") as tmp:
                w.save(Path(tmp), epoch)
                if writer is not None:
                    writer.write(metrics)
                session.report(metrics, tmp)
        final = _finish(w.model, w.ema, w.augmenter, w.data, w.device, job.train, w.rank, w.world, w.autocast,
                        w.run_dir, w.spec, w.history)
    finally:
        if writer is not None:
            writer.close()
    session.report(final, None)
    return final


class _Worker:
    """One worker's training state: model (+ DDP, EMA), optimizer, schedule, data, its generator, history."""

    def __init__(self, job: TrainJob, session: Session) -> None:
        cfg = self.cfg = job.train
        self.rank, self.world, self.device = session.rank, session.world, session.device
        device = self.device
        torch.set_num_threads(job.threads)
        self.run_dir = Path(job.run_dir)
        self.data = load_data(job.data)
        self.spec = job.spec(self.data.num_classes)
        channels_last = _flag(cfg.channels_last, device.type == "cuda")
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        model = build_model(self.spec, drop_connect_rate=cfg.drop_connect_rate, bn_eps=cfg.bn_eps,
                            bn_momentum=cfg.bn_momentum, same_padding=job.padding == "same")
        if cfg.zero_init:
            zero_init(model)
        self.model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        torch.manual_seed(cfg.seed + 1 + self.rank)  # dropout / stochastic depth streams differ per rank
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed * 1009 + self.rank)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.write_model_yaml(self.run_dir, ckpt.spec_record(self.spec, job.padding, cfg.bn_eps))
        self._setup(channels_last)
        self.start_epoch, self.history = 0, []
        with session.latest_checkpoint() as found:
            if found is not None:
                self.start_epoch, self.history = _restore(Path(found), self.rank, self.model, self.ema,
                                                          self.optimizer, self.schedule, self.generator)
                log.info("rank %d resumes after epoch %d (step %d)", self.rank, self.start_epoch, self.schedule.step)
        self.attempt = 1 + max((h.get("attempt", 1) for h in self.history), default=0)
        self.epoch_times: list[float] = []

    def _setup(self, channels_last: bool) -> None:
        cfg, device, world = self.cfg, self.device, self.world
        self.per_worker = cfg.batch_size // world
        self.train = device_split(self.data, "train", device)
        self.n = len(self.train.y)
        per_rank = self.n // world
        self.steps = per_rank // self.per_worker
        if self.steps < 1:
            raise ValueError(f"train.batch_size={cfg.batch_size} ({self.per_worker} per worker) exceeds the "
                             f"{per_rank} training images of each of the {world} workers; lower train.batch_size")
        self.ddp = torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[device] if device.type == "cuda" else None) if world > 1 else self.model
        self.optimizer = make_optimizer(self.model, cfg.optimizer, cfg.peak_lr(), cfg.momentum, cfg.rmsprop_decay,
                                        cfg.epsilon, cfg.weight_decay)
        self.schedule = EfficientNetSchedule(cfg.peak_lr(), self.steps, cfg.warmup_epochs, cfg.decay_epochs,
                                             cfg.decay_rate)
        self.ema = ModelEma(self.model, cfg.ema_decay, cfg.ema_warmup) if cfg.ema_decay is not None else None
        self.augmenter = Augmenter(cfg, self.data.mean, self.data.std, self.spec.resolution, device, channels_last)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if _flag(cfg.amp, device.type == "cuda") \
            else nullcontext()
        self.holdout = device_split(self.data, "holdout", device)

    def epoch(self, epoch: int) -> dict[str, Any]:
        """One epoch on this worker's shard; the epoch's metrics (loss, held-out accuracy, replica checks, ETA)."""
        cfg, steps, per_worker, world = self.cfg, self.steps, self.per_worker, self.world
        begin = time.perf_counter()
        order = shard(self.n, world, self.rank, cfg.seed, epoch, self.device)
        self.ddp.train()
        losses = torch.zeros(steps, device=self.device)
        lr = self.schedule.lr()
        for i in range(steps):
            idx = order[i * per_worker:(i + 1) * per_worker]
            x = self.augmenter.train_batch(self.train.x[idx], self.generator)
            lr = self.schedule.lr()
            losses[i] = train_step(self.ddp, self.model, x, self.train.y[idx], self.optimizer, self.schedule,
                                   self.ema, cfg, self.autocast)
        train_s = time.perf_counter() - begin
        quarter = max(1, steps // 4)
        loss_mean, loss_start, loss_end = (_mean(v, world) for v in (
            losses.mean(), losses[:quarter].mean(), losses[-quarter:].mean()))
        if not math.isfinite(loss_mean):
            raise FloatingPointError(f"training loss became {loss_mean} in epoch {epoch}; lower train.lr")
        images = steps * per_worker * world
        metrics = {"epoch": epoch, "epochs": cfg.epochs, "attempt": self.attempt, "loss": loss_mean,
                   "loss_start": loss_start, "loss_end": loss_end, "lr": lr, "step": self.schedule.step,
                   "images": images, "images_per_s": images / train_s, "train_s": train_s,
                   "accuracy": evaluate(self.model, self.augmenter, self.holdout, cfg.eval_batch_size, self.rank,
                                        world, self.autocast),
                   "replica_max_diff": replica_max_diff(self.model, world),
                   "shard_overlap": shard_overlap(order[:steps * per_worker], world, self.n)}
        if self.ema is not None:
            metrics["ema_accuracy"] = evaluate(self.ema.module, self.augmenter, self.holdout, cfg.eval_batch_size,
                                               self.rank, world, self.autocast)
        self.epoch_times.append(time.perf_counter() - begin)
        metrics["epoch_s"] = self.epoch_times[-1]
        metrics["eta_s"] = sum(self.epoch_times) / len(self.epoch_times) * (cfg.epochs - epoch)
        return metrics

    def save(self, folder: Path, epoch: int) -> None:
        """This worker's part of the epoch's checkpoint into ``folder`` (rank 0: the model state too)."""
        torch.save(ckpt.rng_state(self.generator), folder / ckpt.rng_file(self.rank))
        if self.rank == 0:
            torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                        "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                        "epoch": epoch, "history": self.history}, folder / ckpt.STATE)


def train_step(ddp, model, x, y, optimizer, schedule: EfficientNetSchedule, ema: ModelEma | None,
               cfg: TrainConfig, autocast) -> torch.Tensor:
    """One optimisation step of the recipe (``ddp`` may be the plain ``model``); returns the detached loss."""
    schedule.apply(optimizer)
    with autocast:
        logits = ddp(x)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    schedule.advance()
    if ema is not None:
        ema.update(model)
    return loss.detach()


def _finish(model, ema, augmenter, data, device, cfg, rank, world, autocast, run_dir, spec, history) -> dict:
    """Test-split accuracy of the raw and EMA weights; rank 0 writes weights.pt and result.json."""
    final: dict[str, Any] = {"epoch": cfg.epochs, "done": True, "history": len(history)}
    if len(data.y_test):
        test = device_split(data, "test", device)
        final["test_accuracy"] = evaluate(model, augmenter, test, cfg.eval_batch_size, rank, world, autocast)
        if ema is not None:
            final["test_ema_accuracy"] = evaluate(ema.module, augmenter, test, cfg.eval_batch_size, rank, world,
                                                  autocast)
    if history:
        final["holdout_accuracy"] = history[-1]["accuracy"]
        if ema is not None:
            final["holdout_ema_accuracy"] = history[-1]["ema_accuracy"]
    final["weights"] = "ema" if ema is not None else "raw"
    if rank == 0:
        source = ema.module if ema is not None else model
        state = {k: v.detach().cpu().contiguous() for k, v in source.state_dict().items()}
        torch.save(state, run_dir / ckpt.WEIGHTS)
        ckpt.write_result(run_dir, final)
    return final


def _restore(folder: Path, rank: int, model, ema, optimizer, schedule, generator) -> tuple[int, list[dict]]:
    state = ckpt.load(folder / ckpt.STATE)
    model.load_state_dict(state["model"])
    if ema is not None:
        if state["ema"] is None:
            raise ValueError(f"{folder}: the checkpoint has no EMA weights but train.ema_decay is set; resume "
                             "with the ema_decay the run started with (null)")
        ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    rng = folder / ckpt.rng_file(rank)
    if rng.is_file():
        ckpt.load_rng_state(ckpt.load(rng), generator)
    else:  # more workers than the run had: a fresh stream for this rank
        log.warning("%s: no RNG state for rank %d; continuing with a fresh seed", folder, rank)
        generator.manual_seed(int(state["epoch"]) * 7919 + rank)
    return int(state["epoch"]), list(state["history"])


def shard(n: int, world: int, rank: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """This rank's training indices in ``epoch``: positions rank, rank + world, ... of a shared permutation."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g)
    return order[rank::world][:n // world].to(device)


def evaluate(model, augmenter: Augmenter, split, batch_size: int, rank: int, world: int, autocast) -> float:
    """Top-1 accuracy on ``split``: each rank scores its share (indices rank, rank + world, ...), counts summed."""
    model.eval()
    idx = torch.arange(rank, len(split.y), world, device=split.y.device)
    counts = torch.zeros(2, dtype=torch.float64, device=split.y.device)
    with torch.inference_mode(), autocast:
        for start in range(0, len(idx), batch_size):
            part = idx[start:start + batch_size]
            logits = model(augmenter.eval_batch(split.x[part]))
            counts[0] += (logits.argmax(1) == split.y[part]).sum()
            counts[1] += len(part)
    if world > 1:
        dist.all_reduce(counts)
    return float(counts[0] / counts[1].clamp_min(1))


def replica_max_diff(model, world: int) -> float:
    """Largest difference of any weight between the replicas (0 when DDP kept them in step).

    BatchNorm statistics are not compared: each replica updates them from its own batch and DDP
    overwrites them with rank 0's at the start of every forward pass (its ``broadcast_buffers``).
    """
    if world == 1:
        return 0.0
    flat = torch.cat([t.detach().float().flatten() for t in model.parameters()])
    hi, lo = flat.clone(), flat.clone()
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    return float((hi - lo).max())


def shard_overlap(indices: torch.Tensor, world: int, n: int) -> int:
    """How many training images more than one rank trained on in this epoch (0 for disjoint shards)."""
    if world == 1:
        return 0
    seen = torch.zeros(n, dtype=torch.int64, device=indices.device)
    seen[indices] = 1
    dist.all_reduce(seen)
    return int((seen > 1).sum())


def _mean(value: torch.Tensor, world: int) -> float:
    if world > 1:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= world
    return float(value)


def _flag(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


class _MetricsWriter:
    """Rank 0's per-epoch record: ``metrics.jsonl`` (rewritten from the checkpoint on resume) and TensorBoard."""

    def __init__(self, run_dir: Path, history: list[dict], start_epoch: int) -> None:
        self.path = run_dir / ckpt.METRICS
        self.path.write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_epoch + 1)

    def write(self, metrics: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(metrics) + "\n")
        for key in ("loss", "accuracy", "ema_accuracy", "lr", "images_per_s"):
            if key in metrics:
                self.tb.add_scalar(f"train/{key}", metrics[key], metrics["epoch"])
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


def _copy_tree(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def with_overrides(job: TrainJob, **train_overrides) -> TrainJob:
    """``job`` with some recipe settings replaced (tests and benchmarks)."""
    return dataclasses.replace(job, train=dataclasses.replace(job.train, **train_overrides))
