"""Device-side pieces of the proxy trainer: resident data, batched augmentation, schedule, optimizer.

The fast path keeps a small dataset on the training device as uint8 NHWC
tensors (one upload per process, cached on the :class:`~nas.data.Dataset`)
and builds every batch there: one gather does the random crop with zero
padding and the horizontal flip for the whole batch (the CIFAR recipe of He
et al. 2016, section 4.2), then a per-channel affine normalises.  The NHWC
layout permuted to NCHW *is* channels_last, so no copy is needed for it.  No
DataLoader, no host round trip: randomness comes from a ``torch.Generator`` on
the same device, seeded by the trial.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Dataset


class DeviceSplit(NamedTuple):
    x: torch.Tensor  # (N, H, W, 3) uint8
    y: torch.Tensor  # (N,) int64


def device_split(data: Dataset, split: str, device: torch.device) -> DeviceSplit:
    """``split`` of ``data`` on ``device``, uploaded once per process and cached on ``data``."""
    key = (split, str(device))
    cached = data.device_cache.get(key)
    if cached is None:
        x, y = data.split(split)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        if device.type != "cpu":
            xt, yt = xt.to(device), yt.to(device)
        cached = data.device_cache[key] = DeviceSplit(xt, yt)
    return cached


class Batcher:
    """Builds normalised float NCHW batches from uint8 NHWC device tensors.

    ``channels_last``: return NHWC-strided tensors (free: it is the storage layout).
    ``resolution``: resize (bilinear, antialiased when shrinking) when the data has another size.
    """

    def __init__(self, data: Dataset, device: torch.device, resolution: int, padding: int, flip: bool,
                 channels_last: bool) -> None:
        mean = torch.tensor(data.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(data.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.scale = 1.0 / (255.0 * std)
        self.shift = -mean / std
        self.device = device
        self.resolution = resolution
        self.padding = padding
        self.flip = flip
        self.channels_last = channels_last
        size = data.image_size
        self._arange = torch.arange(size, device=device)

    def _finish(self, x_u8: torch.Tensor) -> torch.Tensor:
        x = x_u8.permute(0, 3, 1, 2).float()  # keeps the NHWC strides: channels_last for free
        x = torch.addcmul(self.shift, x, self.scale)
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=self.resolution < x.shape[-1])
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop of the zero-padded images and random horizontal flip, as one gather."""
        b, h, w, _ = x.shape
        p = self.padding
        if p == 0 and not self.flip:
            return x
        dev = x.device
        rows = self._arange[:h].expand(b, h)
        cols = self._arange[:w].expand(b, w)
        if p:
            x = F.pad(x, (0, 0, p, p, p, p))
            rows = rows + torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator)
            cols = cols + torch.randint(0, 2 * p + 1, (b, 1), device=dev, generator=generator)
        if self.flip:
            flip = torch.rand((b, 1), device=dev, generator=generator) < 0.5
            cols = torch.where(flip, cols.flip(1), cols)
        batch = torch.arange(b, device=dev).view(b, 1, 1)
        return x[batch, rows.unsqueeze(2), cols.unsqueeze(1)]

    def train_batch(self, split: DeviceSplit, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self._finish(self.augment(split.x[idx], generator))

    def eval_batch(self, split: DeviceSplit, start: int, stop: int) -> torch.Tensor:
        return self._finish(split.x[start:stop])


def lr_factor(step: int, total: int, warmup: int, shape: str, final: float) -> float:
    """Learning-rate multiplier at ``step`` of ``total``: linear warm-up from ~0, then ``shape`` to ``final``.

    ``linear`` after a warm-up is the one-cycle policy (Smith & Topin 2017,
    arXiv:1708.07120); ``cosine`` is SGDR without restarts (Loshchilov & Hutter
    2017, arXiv:1608.03983); ``constant`` keeps the peak.
    """
    if step < warmup:
        return (step + 1) / warmup
    if shape == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if shape == "cosine":
        return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return final + (1.0 - final) * (1.0 - progress)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv/linear weights only; BatchNorm affine and biases are not decayed."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, nesterov: bool, weight_decay: float,
                   betas: tuple[float, float], device: torch.device) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    fused = device.type == "cuda"  # one kernel per step instead of a foreach chain
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0, fused=fused)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
