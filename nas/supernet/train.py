"""Training the supernet: the sandwich rule, in-place distillation, data-parallel shards, per-epoch checkpoints.

``train_supernet(exp)`` is a plain function.  With one worker it runs in the calling process
(no Ray); Ray Train's ``train_loop_per_worker`` (``nas.supernet.ray_train``) calls the same
function on every worker with that worker's ``rank`` and ``world_size`` inside an initialised
``torch.distributed`` process group.

One step (BigNAS, Yu et al. 2020, arXiv:2003.11142, section 3.1): the same batch goes through
the largest path (labels, label smoothing), the smallest and ``random_paths`` uniformly
sampled paths (SPOS's uniform sampling, Guo et al. 2020); with ``distill`` those learn the
largest path's soft predictions (in-place distillation).  Gradients of all paths accumulate
into the shared weights, then one optimiser step.

Data parallel: the global batch is split evenly across workers (each trains on its own
shard of every batch), paths are sampled identically on every worker (OFA seeds the subnet
sampling per step the same way), and the accumulated gradient is averaged with one
all-reduce per step -- the DDP gradient reduction, done once per sandwich step over all
paths, as Horovod's DistributedOptimizer does in OFA; torch's ``DistributedDataParallel``
reducer assumes one forward per backward and a fixed set of used parameters, which a
multi-path step breaks.  BN running statistics are averaged across workers at epoch ends.

Every epoch seeds its data order, augmentation and path sampling from ``(seed, epoch)``, so a
run resumed from the checkpoint of epoch ``e`` continues exactly as the uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from efficientnet.supernet import Supernet
from nas.config import ConfigError, to_dict
from nas.proxy.data import load_data
from nas.proxy.config import resolve_device, use_amp, use_channels_last
from nas.proxy.ops import Batcher, device_split, lr_factor, make_optimizer
from search_spaces import get_space

from .checkpoint import read_checkpoint, save_checkpoint
from .config import SupernetExperiment, arch_options
from .evaluate import PathScorer

log = logging.getLogger(__name__)

Report = Callable[[dict], Any]
WORKERS_DIR = "workers"


@dataclass
class TrainSummary:
    epochs: int
    checkpoint: str
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0


def _meta(exp: SupernetExperiment, net: Supernet, epoch: int, history: list, world_size: int) -> dict:
    return {"space": exp.space, "arch": dict(net.options), "data": to_dict(exp.data), "proxy": to_dict(exp.proxy),
            "supernet": to_dict(exp.supernet), "epoch": epoch, "epochs": exp.supernet.epochs, "history": history,
            "world_size": world_size}


def _check_resumable(meta: dict, exp: SupernetExperiment, net: Supernet, path) -> None:
    """A checkpoint continues only the run it came from (same space, size, data)."""
    mine = {"space": exp.space, "arch": dict(net.options), "data": to_dict(exp.data)}
    for key, value in mine.items():
        if meta.get(key) != value:
            raise ConfigError(f"--resume: checkpoint {str(path)!r} was trained with {key} {meta.get(key)!r}, the "
                              f"config has {value!r}; use the same config or set output.name to start a new run")


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1, np.uint64)[0] >> 1)


def _all_reduce_mean(tensors: list[torch.Tensor], world_size: int) -> None:
    """Average ``tensors`` across workers in place with one collective (flattened)."""
    if world_size == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset:offset + n].view_as(t))
        offset += n


def _digest(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_step(net: Supernet, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, paths: list,
               distill: bool, label_smoothing: float, autocast, params: list[torch.Tensor], world_size: int = 1,
               grad_clip: float | None = None) -> torch.Tensor:
    """One step over ``paths`` (the first one the teacher when ``distill``); returns the first path's loss.

    Gradients of all paths accumulate, are averaged across workers (one all-reduce), then one
    optimiser step.  Weights no path used keep ``grad=None`` and are left alone by the optimiser.
    """
    optimizer.zero_grad(set_to_none=True)
    teacher = None
    first = None
    for j, genotype in enumerate(paths):
        with autocast:
            logits = net(x, genotype).float()
        if teacher is not None:
            loss = torch.sum(-teacher * F.log_softmax(logits, 1), 1).mean()
        else:
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if j == 0:
            first = loss.detach()
            if distill:
                teacher = F.softmax(logits.detach(), 1)
        loss.backward()
    if world_size > 1:
        _all_reduce_mean([p.grad for p in params if p.grad is not None], world_size)  # same set on every worker
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    optimizer.step()
    return first


def train_supernet(exp: SupernetExperiment, resume: bool = False, rank: int = 0, world_size: int = 1,
                   device: torch.device | str | None = None, report: Report | None = None) -> TrainSummary:
    """Train (or continue) the supernet of ``exp``; rank 0 writes the checkpoint after every epoch.

    ``resume``: continue from the checkpoint's last finished epoch (a missing checkpoint starts
    afresh).  Without ``resume`` an existing checkpoint is an error (never overwritten).
    ``report(metrics)`` is called after every epoch on every worker.
    """
    cfg, proxy = exp.supernet, exp.proxy
    if world_size > 1 and not dist.is_initialized():
        raise RuntimeError("world_size > 1 needs an initialised torch.distributed process group (Ray Train)")
    if cfg.batch_size % world_size:
        raise ConfigError(f"supernet.batch_size={cfg.batch_size} must be divisible by the {world_size} workers")
    device = resolve_device(proxy.device) if device is None else torch.device(device)
    path = exp.checkpoint_path
    payload = None
    if path.exists():
        if not resume:
            raise ConfigError(f"output: {str(path)!r} already holds a supernet; pass --resume to continue it or "
                              "set output.name to start a new one")
        payload = read_checkpoint(path)
    elif resume:
        log.info("--resume: no checkpoint at %s yet, starting from epoch 1", path)
    data = load_data(exp.data)
    space = get_space(exp.space)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # the initial weights: the same on every worker
        net = Supernet(space, **arch_options(exp, data.num_classes))
    if cfg.zero_init:
        net.zero_init()
    start_epoch, history = 1, []
    if payload is not None:
        _check_resumable(payload["meta"], exp, net, path)
        net.load_state_dict(payload["model"])
        start_epoch = int(payload["meta"]["epoch"]) + 1
        history = list(payload["meta"]["history"])
    channels_last = use_channels_last(proxy, device)
    net = net.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = make_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.betas,
                               device)
    if payload is not None and payload.get("optimizer") is not None:
        optimizer.load_state_dict(payload["optimizer"])
    del payload
    if start_epoch > cfg.epochs:
        log.info("supernet at %s already trained %d of %d epochs", path, start_epoch - 1, cfg.epochs)
        return TrainSummary(start_epoch - 1, str(path), history, start_epoch - 1)

    train = device_split(data, "train", device)
    batcher = Batcher(data, device, proxy.resolution, proxy.crop_padding, proxy.flip, channels_last)
    scorer = PathScorer(net, data, proxy, cfg.calib_batches, cfg.calib_batch_size, cfg.seed, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp(proxy, device) else nullcontext()
    big, small = net.largest(), net.smallest()
    n = len(train.y)
    batch = min(cfg.batch_size, n - n % world_size)
    local = batch // world_size
    steps = n // batch
    total = steps * cfg.epochs
    warmup = min(total, round(cfg.warmup_epochs * steps))
    params = [p for p in net.parameters() if p.requires_grad]
    bn_buffers = [b for bn in net.batchnorms() for b in (bn.running_mean, bn.running_var)]
    step = (start_epoch - 1) * steps
    shard: list[int] = []
    for epoch in range(start_epoch, cfg.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(cfg.seed, epoch))).to(train.y.device)
        augment = torch.Generator(device=device)
        augment.manual_seed(_seed(cfg.seed, epoch, rank + 1))
        paths_rng = np.random.default_rng([cfg.seed, epoch, 7])
        loss_sum = torch.zeros((), device=device)
        shard = []
        for i in range(steps):
            factor = lr_factor(step, total, warmup, cfg.schedule, cfg.final_lr)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * factor
            idx = order[i * batch + rank * local:i * batch + (rank + 1) * local]
            shard.append(idx)
            x, y = batcher.train_batch(train, idx, augment), train.y[idx]
            paths = ([big, small] if cfg.sandwich else []) + [space.sample(paths_rng) for _ in range(cfg.random_paths)]
            loss_sum += train_step(net, optimizer, x, y, paths, cfg.distill, proxy.label_smoothing, autocast,
                                   params, world_size, cfg.grad_clip)
            step += 1
        mean_loss = float(loss_sum.item()) / max(1, steps)
        train_s = time.perf_counter() - t0
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"supernet training loss became {mean_loss} in epoch {epoch}; lower supernet.lr "
                                     "or set supernet.grad_clip")
        with torch.no_grad():
            _all_reduce_mean(bn_buffers, world_size)
        t1 = time.perf_counter()
        acc_big, _ = scorer(big)
        acc_small, _ = scorer(small)
        metrics = {"epoch": epoch, "loss": mean_loss, "accuracy_largest": acc_big, "accuracy_smallest": acc_small,
                   "lr": cfg.lr * factor, "train_s": train_s, "eval_s": time.perf_counter() - t1,
                   "path_images_per_s": steps * batch * len(paths) / max(train_s, 1e-9),
                   "images_per_s": steps * batch / max(train_s, 1e-9)}
        history.append(metrics)
        log.info("supernet epoch %d/%d: loss %.4f, held-out accuracy largest %.4f smallest %.4f, %.0f path-images/s",
                 epoch, cfg.epochs, mean_loss, acc_big, acc_small, metrics["path_images_per_s"])
        if rank == 0:
            save_checkpoint(path, net, optimizer, _meta(exp, net, epoch, history, world_size))
        if report is not None:
            report(dict(metrics))
    if world_size > 1 or rank > 0:
        _write_worker_record(exp, rank, world_size, shard, net)
    return TrainSummary(cfg.epochs, str(path), history, start_epoch - 1)


def _write_worker_record(exp: SupernetExperiment, rank: int, world_size: int, shard: list[torch.Tensor],
                         net: Supernet) -> None:
    """What this worker trained on in the last epoch and the digest of its final weights."""
    folder = exp.run_dir / WORKERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    indices = torch.cat(shard).cpu().tolist() if shard else []
    record = {"rank": rank, "world_size": world_size, "last_epoch_indices": indices,
              "weights_digest": _digest(net.parameters()), "buffers_digest": _digest(net.buffers())}
    (folder / f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
