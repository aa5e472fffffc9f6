"""Training the supernet: the sandwich rule, in-place distillation, data-parallel shards, per-epoch checkpoints.

``train_supernet(exp)`` is a plain function.  With one worker it runs in the calling process
(no Ray); Ray Train's ``train_loop_per_worker`` (``nas.ray.supernet``) calls the same
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

Few-shot (``supernet.few_shot``, Few-shot NAS, Zhao et al. 2021): after that many epochs the supernet
becomes one sub-supernet per option of one decision (``efficientnet.fewshot.SplitSupernet``, the
optimizer state copied into each); step ``i`` then trains sub-supernet ``i mod K`` on its own paths.

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

from efficientnet.fewshot import SplitSupernet
from efficientnet.supernet import Supernet

from ..config import ConfigError, to_dict
from ..data import load_data
from ..experiment.space import space_record
from ..experiment.supernet import SupernetExperiment, arch_options, member_experiment
from ..progress import EpochLog
from ..proxy.ops import Batcher, device_split, lr_factor, make_optimizer
from ..proxy.runtime import resolve_device, use_amp, use_channels_last
from .checkpoint import read_checkpoint, save_checkpoint, write_payload
from .evaluate import PathScorer
from .fewshot import part_extremes, route_to, split_optimizer

log = logging.getLogger(__name__)

Report = Callable[[dict], Any]
WORKERS_DIR = "workers"


@dataclass
class TrainSummary:
    epochs: int
    checkpoint: str
    history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int = 0
    #: With ``supernet.ensemble > 1``: every member's summary (member 0's is this one's content).
    members: list["TrainSummary"] = field(default_factory=list)


def _meta(exp: SupernetExperiment, net: Supernet | SplitSupernet, epoch: int, history: list, world_size: int) -> dict:
    return {"space": space_record(exp.space), "arch": dict(net.options), "data": to_dict(exp.data),
            "proxy": to_dict(exp.proxy),
            "supernet": to_dict(exp.supernet), "epoch": epoch, "epochs": exp.supernet.epochs, "history": history,
            "world_size": world_size, "split": net.record if isinstance(net, SplitSupernet) else None}


#: Supernet settings a resume may change: the run's length, how paths are scored, where it runs (the global
#: batch is split over the workers: the same optimisation) and how many members; every other one shapes the weights.
RESUMABLE_CHANGES = ("epochs", "calib_batches", "calib_batch_size", "workers", "cpus_per_worker", "checkpoint",
                     "ensemble")


def check_resume_recipe(exp: SupernetExperiment) -> None:
    """Before any slow work (Ray, data): the run dir's checkpoint, if any, was trained with ``exp``'s recipe."""
    if exp.checkpoint_path.exists():
        _check_recipe(read_checkpoint(exp.checkpoint_path)["meta"], exp, exp.checkpoint_path)


def _check_recipe(meta: dict, exp: SupernetExperiment, path) -> None:
    recipe, saved = to_dict(exp.supernet), meta.get("supernet") or {}  # a setting the checkpoint lacks: skipped
    for name in sorted(set(recipe) & set(saved) - set(RESUMABLE_CHANGES)):
        if json.dumps(recipe[name]) != json.dumps(saved[name]):  # tuples and lists alike
            raise ConfigError(f"--resume: checkpoint {str(path)!r} was trained with supernet.{name}={saved[name]!r}, "
                              f"the config has {recipe[name]!r}; use the same setting or set output.name to start a "
                              "new run")


def _check_resumable(meta: dict, exp: SupernetExperiment, net: Supernet | SplitSupernet, path) -> None:
    """A checkpoint continues only the run it came from (same space, size, data, recipe and seed)."""
    mine = {"space": space_record(exp.space), "arch": dict(net.options), "data": to_dict(exp.data)}
    theirs = dict(meta)
    if isinstance(theirs.get("space"), str):  # a checkpoint that recorded a shipped name
        theirs["space"] = space_record(theirs["space"])
    _check_recipe(theirs, exp, path)
    for key, value in mine.items():
        if theirs.get(key) != value:
            had, has = theirs.get(key), value
            if key == "space":  # declarations are long: name them
                had, has = (f"{v.get('name')!r} (declaration)" if isinstance(v, dict) else repr(v) for v in (had, has))
            else:
                had, has = repr(had), repr(has)
            raise ConfigError(f"--resume: checkpoint {str(path)!r} was trained with {key} {had}, the "
                              f"config has {has}; use the same config or set output.name to start a new run")


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
                   device: torch.device | str | None = None, report: Report | None = None,
                   on_step: Report | None = None) -> TrainSummary:
    """Train (or continue) the supernet of ``exp``; rank 0 writes the checkpoint after every epoch.

    ``resume``: continue from the checkpoint's last finished epoch (a missing checkpoint starts
    afresh).  Without ``resume`` an existing checkpoint is an error (never overwritten).
    ``report(metrics)`` is called after every epoch on every worker; ``on_step(progress)`` at most
    every ``STEP_REPORT_S`` seconds inside an epoch (rank 0).  Rank 0 also appends every epoch's
    metrics to ``metrics.jsonl`` and TensorBoard curves (``tensorboard/supernet``) in the run dir.
    ``supernet.ensemble: K`` trains K members one after another (member k: seed + k, its own checkpoint
    file, ``tensorboard/supernet-member<k>``); the summary is member 0's, with every member's in ``members``.
    """
    cfg = exp.supernet
    if world_size > 1 and not dist.is_initialized():
        raise RuntimeError("world_size > 1 needs an initialised torch.distributed process group (Ray Train)")
    if cfg.batch_size % world_size:
        raise ConfigError(f"supernet.batch_size={cfg.batch_size} must be divisible by the {world_size} workers")
    dev = resolve_device(exp.proxy.device) if device is None else torch.device(device)
    members = [_train_member(member_experiment(exp, k), (k, cfg.ensemble), resume or k > 0, rank, world_size, dev,
                             report, on_step) for k in range(cfg.ensemble)]  # each resumes, or is reused, on its own
    first = members[0]  # the ensemble is named by member 0's checkpoint
    if rank == 0 and first.resumed_from >= first.epochs:  # reused as it was: its meta may count other members
        _record_members(exp.checkpoint_path, cfg.ensemble)
    return TrainSummary(first.epochs, first.checkpoint, first.history, first.resumed_from,
                        members if cfg.ensemble > 1 else [])


def _record_members(path, members: int) -> None:
    """Member 0's checkpoint says how many members the ensemble has now (more may be added on a resume)."""
    payload = read_checkpoint(path)
    recipe = payload["meta"]["supernet"]
    if int(recipe.get("ensemble", 1)) != members:
        recipe["ensemble"] = members
        write_payload(path, payload)


def _train_member(exp: SupernetExperiment, member: tuple[int, int], resume: bool, rank: int, world_size: int,
                  device: torch.device, report: Report | None, on_step: Report | None) -> TrainSummary:
    cfg = exp.supernet
    k, members = member
    run = _SupernetRun(exp, resume, rank, world_size, device)
    if run.start_epoch > cfg.epochs:
        log.info("supernet at %s already trained %d of %d epochs", run.path, run.start_epoch - 1, cfg.epochs)
        return TrainSummary(run.start_epoch - 1, str(run.path), run.history, run.start_epoch - 1)
    curves = EpochLog(exp.run_dir, "supernet" if k == 0 else f"supernet-member{k}") if rank == 0 else None
    try:
        for epoch in range(run.start_epoch, cfg.epochs + 1):
            metrics = run.epoch(epoch, on_step if rank == 0 else None)
            if members > 1:
                metrics.update(member=k, members=members)
            run.history.append(metrics)
            log.debug("supernet epoch %d/%d: %s", epoch, cfg.epochs, metrics)
            if rank == 0:
                save_checkpoint(run.path, run.net, run.optimizer, _meta(exp, run.net, epoch, run.history, world_size))
                curves.write(metrics)
            if report is not None:
                report(dict(metrics))
    finally:
        if curves is not None:
            curves.close()
    if world_size > 1 or rank > 0:
        _write_worker_record(exp, rank, world_size, run.shard, run.net)
    return TrainSummary(cfg.epochs, str(run.path), run.history, run.start_epoch - 1)


#: Inside an epoch, ``on_step`` is called at most this often (a progress line a person sees).
STEP_REPORT_S = 10.0


class _SupernetRun:
    """One training run's state: the supernet on its device, the optimizer, data, batcher and path scorer."""

    def __init__(self, exp: SupernetExperiment, resume: bool, rank: int, world_size: int, device: torch.device):
        cfg = exp.supernet
        self.exp, self.cfg, self.rank, self.world_size, self.device = exp, cfg, rank, world_size, device
        self.path = exp.checkpoint_path
        payload = self._payload(resume)
        data = load_data(exp.data)
        self.space = exp.search_space
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # the initial weights: the same on every worker
            net = Supernet(self.space, **arch_options(exp, data.num_classes))
        if cfg.zero_init:
            net.zero_init()
        self.start_epoch, self.history = 1, []
        if payload is not None:
            _check_resumable(payload["meta"], exp, net, self.path)
            if payload["meta"].get("split"):  # a few-shot run resumed after its split
                net = SplitSupernet.split(net, int(payload["meta"]["split"]["decision"]))
            net.load_state_dict(payload["model"])
            self.start_epoch = int(payload["meta"]["epoch"]) + 1
            self.history = list(payload["meta"]["history"])
        channels_last = use_channels_last(exp.proxy, device)
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(device, memory_format=self.layout)
        self.optimizer = self._optimizer(self.net)
        if payload is not None and payload.get("optimizer") is not None:
            self.optimizer.load_state_dict(payload["optimizer"])
        self._setup(data, channels_last)

    def _optimizer(self, net) -> torch.optim.Optimizer:
        cfg = self.cfg
        return make_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.betas,
                              self.device)

    def _split(self) -> None:
        """Few-shot: the one-shot supernet becomes its sub-supernets, the optimizer state copied into each."""
        net = SplitSupernet.split(self.net, self.cfg.few_shot_decision).to(self.device, memory_format=self.layout)
        self.optimizer = split_optimizer(self.optimizer, self.net, net, self._optimizer(net))
        self.net = self.scorer.net = net
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.bn_buffers = [b for bn in net.batchnorms() for b in (bn.running_mean, bn.running_var)]
        log.info("few-shot: split the supernet into %d sub-supernets by decision %d (%s) after epoch %d",
                 len(net.parts), net.decision, self.space.decision_names[net.decision], self.cfg.few_shot)

    def _payload(self, resume: bool) -> dict | None:
        if self.path.exists():
            if not resume:
                raise ConfigError(f"output: {str(self.path)!r} already holds a supernet; pass --resume to continue it "
                                  "or set output.name to start a new one")
            return read_checkpoint(self.path)
        if resume:
            log.info("--resume: no checkpoint at %s yet, starting from epoch 1", self.path)
        return None

    def _setup(self, data, channels_last: bool) -> None:
        cfg, proxy, device = self.cfg, self.exp.proxy, self.device
        self.train = device_split(data, "train", device)
        self.batcher = Batcher(data, device, cfg.train_resolution or proxy.resolution, proxy.crop_padding, proxy.flip,
                               channels_last)
        self.scorer = PathScorer(self.net, data, proxy, cfg.calib_batches, cfg.calib_batch_size, cfg.seed, device)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp(proxy, device) else nullcontext()
        self.big, self.small = self.net.largest(), self.net.smallest()
        self.big_code = np.array(self.space.encode(self.big))
        self.extremes = part_extremes(self.space, self.big, self.small, cfg.few_shot_decision) if cfg.few_shot else []
        self.sizes = np.array(self.space.decision_sizes)
        n = len(self.train.y)
        self.batch = min(cfg.batch_size, n - n % self.world_size)
        self.steps = n // self.batch
        self.total = self.steps * cfg.epochs
        self.warmup = min(self.total, round(cfg.warmup_epochs * self.steps))
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.bn_buffers = [b for bn in self.net.batchnorms() for b in (bn.running_mean, bn.running_var)]
        self.shard: list[torch.Tensor] = []

    def _sample(self, rng: np.random.Generator, phase: float):
        """A uniform path, or in progressive shrinking each decision kept at the largest path's with ``phase``."""
        if phase <= 0.0:
            return self.space.sample(rng)
        uniform = rng.integers(0, self.sizes)
        keep = rng.random(len(self.sizes)) < phase
        return self.space.decode(np.where(keep, self.big_code, uniform))

    def _paths(self, step: int, rng: np.random.Generator, phase: float) -> list:
        """The paths of global step ``step``: the sandwich and sampled paths; after a few-shot split, all of
        sub-supernet ``step mod K`` (its extremes, samples forced to its option)."""
        cfg = self.cfg
        if not isinstance(self.net, SplitSupernet):
            return ([self.big, self.small] if cfg.sandwich else []) + [self._sample(rng, phase)
                                                                      for _ in range(cfg.random_paths)]
        k = step % len(self.net.parts)
        sampled = [route_to(self.space, self._sample(rng, phase), self.net.decision, k) for _ in range(cfg.random_paths)]
        return (list(self.extremes[k]) if cfg.sandwich else []) + sampled

    def epoch(self, epoch: int, on_step: Report | None = None) -> dict[str, Any]:
        """Train one epoch (seeded by ``(seed, epoch)``), average BN across workers, score the extremes."""
        cfg, n, local = self.cfg, len(self.train.y), self.batch // self.world_size
        if cfg.few_shot and epoch > cfg.few_shot and not isinstance(self.net, SplitSupernet):
            self._split()
        self.net.train()
        t0 = last = time.perf_counter()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(cfg.seed, epoch))).to(self.train.y.device)
        augment = torch.Generator(device=self.device)
        augment.manual_seed(_seed(cfg.seed, epoch, self.rank + 1))
        paths_rng = np.random.default_rng([cfg.seed, epoch, 7])
        phase = shrink_phase(epoch, cfg.epochs, cfg.shrink_phases)
        loss_sum = torch.zeros((), device=self.device)
        self.shard, factor, paths = [], 1.0, []
        for i in range(self.steps):
            step = (epoch - 1) * self.steps + i
            factor = lr_factor(step, self.total, self.warmup, cfg.schedule, cfg.final_lr)
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr * factor
            idx = order[i * self.batch + self.rank * local:i * self.batch + (self.rank + 1) * local]
            self.shard.append(idx)
            x, y = self.batcher.train_batch(self.train, idx, augment), self.train.y[idx]
            paths = self._paths(step, paths_rng, phase)
            loss_sum += train_step(self.net, self.optimizer, x, y, paths, cfg.distill, self.exp.proxy.label_smoothing,
                                   self.autocast, self.params, self.world_size, cfg.grad_clip)
            if on_step is not None and time.perf_counter() - last >= STEP_REPORT_S:
                last = time.perf_counter()
                on_step({"epoch": epoch, "epochs": cfg.epochs, "step": i + 1, "steps": self.steps,
                         "images_per_s": (i + 1) * self.batch / (last - t0)})
        return self._finish_epoch(epoch, float(loss_sum.item()) / max(1, self.steps), time.perf_counter() - t0,
                                  cfg.lr * factor, len(paths))

    def _finish_epoch(self, epoch: int, mean_loss: float, train_s: float, lr: float, paths: int) -> dict[str, Any]:
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"supernet training loss became {mean_loss} in epoch {epoch}; lower supernet.lr "
                                     "or set supernet.grad_clip")
        with torch.no_grad():
            _all_reduce_mean(self.bn_buffers, self.world_size)
        t1 = time.perf_counter()
        acc_big, _ = self.scorer(self.big)
        acc_small, _ = self.scorer(self.small)
        done = epoch - self.start_epoch + 1
        elapsed = sum(h["train_s"] + h["eval_s"] for h in self.history[-(done - 1):]) if done > 1 else 0.0
        epoch_s = train_s + time.perf_counter() - t1
        return {"epoch": epoch, "epochs": self.cfg.epochs, "loss": mean_loss, "accuracy_largest": acc_big,
                "accuracy_smallest": acc_small, "lr": lr, "train_s": train_s, "eval_s": time.perf_counter() - t1,
                "path_images_per_s": self.steps * self.batch * paths / max(train_s, 1e-9),
                "images_per_s": self.steps * self.batch / max(train_s, 1e-9),
                "eta_s": (elapsed + epoch_s) / done * (self.cfg.epochs - epoch)}


def shrink_phase(epoch: int, epochs: int, phases: int) -> float:
    """Progressive shrinking's share of decisions kept at the largest path in ``epoch`` (1-based):
    ``(P-1-p)/P`` in phase ``p`` of ``P`` equal phases of the epochs; 0.0 with one phase (uniform)."""
    p = min(phases - 1, (epoch - 1) * phases // epochs)
    return (phases - 1 - p) / phases


def _write_worker_record(exp: SupernetExperiment, rank: int, world_size: int, shard: list[torch.Tensor],
                         net: Supernet) -> None:
    """What this worker trained on in the last epoch and the digest of its final weights."""
    folder = exp.run_dir / WORKERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    indices = torch.cat(shard).cpu().tolist() if shard else []
    record = {"rank": rank, "world_size": world_size, "last_epoch_indices": indices,
              "weights_digest": _digest(net.parameters()), "buffers_digest": _digest(net.buffers())}
    (folder / f"rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
