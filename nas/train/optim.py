"""Optimisation pieces of the EfficientNet recipe: TF-convention RMSProp, the learning-rate schedule, weight EMA.

* :class:`RMSpropTF` is TensorFlow 1's ``RMSPropOptimizer`` (the reference's
  optimizer): the squared-gradient average starts at ONE, epsilon is added
  INSIDE the square root and the learning rate multiplies the gradient before
  it enters the momentum buffer::

      ms  = decay * ms + (1 - decay) * g**2           (ms_0 = 1)
      mom = momentum * mom + lr * g / sqrt(ms + eps)
      w  -= mom

  torch's ``RMSprop(alpha=decay, eps=eps, momentum=m)`` starts ms at zero, adds
  eps outside the root (``sqrt(ms) + eps``) and keeps lr outside the buffer;
  its eps would need to be ~sqrt(1e-3) = 0.032 to act alike on small
  gradients, and its first steps are ~1/sqrt(1 - decay) = 3x larger.  So the
  TF form is implemented here rather than converted.
* :class:`EfficientNetSchedule`: the reference's ``build_learning_rate``:
  linear warm-up ``peak * step / warmup_steps``, then the exponential staircase
  ``peak * decay_rate ** floor(step / decay_steps)``, both counted from step 0.
* :class:`ModelEma`: ``tf.train.ExponentialMovingAverage(decay, num_updates=step)``
  over the weights and the BatchNorm statistics; with ``warmup`` the decay is
  ``min(decay, (1 + step) / (10 + step))``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class RMSpropTF(torch.optim.Optimizer):
    """RMSProp in TensorFlow's convention (see the module docstring); L2 weight decay added to the gradient."""

    def __init__(self, params, lr: float, decay: float = 0.9, momentum: float = 0.9, eps: float = 1e-3,
                 weight_decay: float = 0.0) -> None:
        if not lr >= 0 or not 0 <= decay < 1 or not 0 <= momentum < 1 or not eps > 0 or not weight_decay >= 0:
            raise ValueError(f"RMSpropTF needs lr >= 0, decay and momentum in [0, 1), eps > 0, weight_decay >= 0; "
                             f"got lr={lr}, decay={decay}, momentum={momentum}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "decay": decay, "momentum": momentum, "eps": eps,
                                  "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            square, moms = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                square.append(state["square_avg"])
                moms.append(state["momentum_buffer"])
            decay = group["decay"]
            torch._foreach_mul_(square, decay)
            torch._foreach_addcmul_(square, grads, grads, value=1.0 - decay)
            denom = torch._foreach_add(square, group["eps"])
            torch._foreach_sqrt_(denom)
            torch._foreach_mul_(moms, group["momentum"])
            torch._foreach_addcdiv_(moms, grads, denom, value=group["lr"])
            torch._foreach_sub_(params, moms)
        return loss


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on every parameter except BatchNorm's (the reference skips 'batch_normalization' only)."""
    norm_params = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                   for p in m.parameters(recurse=False)}
    decay = [p for p in model.parameters() if p.requires_grad and id(p) not in norm_params]
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) in norm_params]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, name: str, lr: float, momentum: float, rmsprop_decay: float, eps: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    groups = param_groups(model, weight_decay)
    if name == "rmsprop":
        return RMSpropTF(groups, lr=lr, decay=rmsprop_decay, momentum=momentum, eps=eps)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"train.optimizer must be rmsprop, sgd or adamw, got {name!r}")


class EfficientNetSchedule:
    """Learning rate at a global step: linear warm-up, then ``decay_rate ** floor(step / decay_steps)``.

    ``warmup_steps = int(warmup_epochs * steps_per_epoch)`` and ``decay_steps = steps_per_epoch *
    decay_epochs`` as in the reference; the staircase counts from step 0, so the first step after a
    5-epoch warm-up (2.4-epoch decay) already has ``peak * 0.97 ** 2``.  ``state_dict`` holds the step.
    """

    def __init__(self, peak: float, steps_per_epoch: int, warmup_epochs: float, decay_epochs: float,
                 decay_rate: float) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self.peak = peak
        self.warmup_steps = int(warmup_epochs * steps_per_epoch)
        self.decay_steps = steps_per_epoch * decay_epochs
        self.decay_rate = decay_rate
        self.step = 0

    def lr(self, step: int | None = None) -> float:
        step = self.step if step is None else step
        if step < self.warmup_steps:
            return self.peak * step / self.warmup_steps
        return self.peak * self.decay_rate ** math.floor(step / self.decay_steps)

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Set the current step's rate on every group of ``optimizer``; returns it."""
        lr = self.lr()
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def advance(self) -> None:
        self.step += 1

    def state_dict(self) -> dict:
        return {"step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])


class ModelEma:
    """An exponential moving average of a module's parameters and floating-point buffers.

    ``module`` is a frozen copy (evaluation uses it directly); integer buffers (BatchNorm's
    ``num_batches_tracked``) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.updates = 0

    def current_decay(self) -> float:
        """The decay of the next update (``updates`` = steps averaged so far)."""
        if self.warmup:
            return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        ema = [t for t in _tensors(self.module) if t.is_floating_point()]
        live = [t for t in _tensors(model) if t.is_floating_point()]
        torch._foreach_lerp_(ema, [t.to(e.dtype) for t, e in zip(live, ema)], 1.0 - decay)
        for e, t in zip(_tensors(self.module), _tensors(model)):
            if not e.is_floating_point():
                e.copy_(t)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]
