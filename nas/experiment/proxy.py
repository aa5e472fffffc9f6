"""The proxy training recipe: :class:`ProxyConfig` (YAML section ``proxy``), also the size of a supernet.

The recipe and the measurements behind its defaults are described in ``nas.proxy.train``; the torch-side
choices it implies (device, autocast, memory layout, threads) are ``nas.proxy.runtime``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from efficientnet import ModelSpec
from search_spaces import Genotype

from ..cost.target import MAX_DEPTH, MAX_WIDTH, RESOLUTION_RANGE
from .sections import check_device_name


@dataclass(frozen=True)
class ProxyConfig:
    """YAML section ``proxy``: every setting of the proxy training recipe (defaults: the GPU recipe)."""

    epochs: int = 12
    batch_size: int = 256
    eval_batch_size: int = 1024
    #: Input resolution; images of another size are resized on the device.
    resolution: int = 32
    #: Width and depth multipliers of the down-scaled proxy network (compound-scaling rounding).
    width: float = 1.0
    depth: float = 1.0
    #: 1 keeps small inputs large enough for the 5 stride-2 stages (see the module docstring).
    stem_stride: int = 1
    optimizer: Literal["sgd", "adamw"] = "sgd"
    #: Peak learning rate (for ``batch_size`` as given; not rescaled).
    lr: float = 0.2
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    #: After warm-up: ``linear`` (one-cycle), ``cosine`` or ``constant``.
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    #: Linear warm-up length in epochs (may be fractional).
    warmup_epochs: float = 2.5
    #: Learning rate at the end, as a fraction of ``lr``.
    final_lr: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.0
    drop_connect: float = 0.0
    bn_momentum: float = 0.1
    #: Zero-initialise the classifier and the last BatchNorm scale of every residual block, so the
    #: network starts as its shortcut path with loss ln(classes) (Goyal et al. 2017, arXiv:1706.02677).
    zero_init: bool = True
    #: Random-crop zero padding in pixels (0 = no crop) and random horizontal flips.
    crop_padding: int = 4
    flip: bool = True
    #: Clip the gradient norm to this (null = no clipping).
    grad_clip: float | None = None
    #: bf16 autocast: ``auto`` = on a GPU only.
    amp: Literal["auto", "on", "off"] = "auto"
    #: channels_last memory format.  ``auto``: on a CPU on (measured faster here); on a GPU on for
    #: inputs above 64x64 and for trials that share the GPU (``for_gpu_share``), NCHW otherwise.
    #: Measured on an H200 (b0, 32x32, bf16, batch 256, 5-epoch trials): one NCHW trial trains at
    #: 10,340 img/s and keeps the card busy (4 packed: 10,906 aggregate); one channels_last trial
    #: trains at 4,768 img/s but 4 packed reach 15,560.
    channels_last: Literal["auto", "on", "off"] = "auto"
    #: cudnn autotuning.  Off by default: measured on an H200 (b0, cifar10_small, 32x32, bf16) it
    #: changed little (NCHW 10,676 vs 10,221 img/s; channels_last 5,028 vs 5,927) while every new
    #: conv shape costs a timing run in the first epoch of a genotype.  Worth trying at 224x224.
    cudnn_benchmark: bool = False
    #: With ``cudnn_benchmark``: how many cuDNN algorithms to time per convolution shape (PyTorch's
    #: ``torch.backends.cudnn.benchmark_limit``; 0 = all).  Fewer makes the first epoch cheaper.
    cudnn_benchmark_limit: int = 10
    #: ``auto`` (cuda if available, else cpu), ``cpu``, ``cuda``, ``cuda:1``, ...
    device: str = "auto"
    #: torch intra-op threads of the process that trains (null: the trial's CPUs, see ``trial_threads``).
    #: torch's own default (every core) oversubscribes a shared machine: measured on a loaded 2-core VM,
    #: one `nas train-proxy` trial took 122-276 s with 2 threads, 8 s with 1.
    threads: int | None = None
    seed: int = 0
    #: Accuracy is measured on the held-out part of the training split; ``test`` only for final reports.
    evaluate_on: Literal["holdout", "test"] = "holdout"

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str, fix: str) -> None:
            if not ok:
                raise ValueError(f"proxy.{name} must be {rule}, got {getattr(self, name)!r}; {fix}")

        need(self.epochs >= 1, "epochs", ">= 1", "e.g. 5")
        need(self.batch_size >= 1, "batch_size", ">= 1", "e.g. 128")
        need(self.eval_batch_size >= 1, "eval_batch_size", ">= 1", "e.g. 1024")
        low, high = RESOLUTION_RANGE
        need(low <= self.resolution <= high, "resolution", f"in [{low}, {high}] pixels", "e.g. 32")
        need(0 < self.width <= MAX_WIDTH and math.isfinite(self.width), "width", f"in (0, {MAX_WIDTH:g}]", "e.g. 0.5")
        need(0 < self.depth <= MAX_DEPTH and math.isfinite(self.depth), "depth", f"in (0, {MAX_DEPTH:g}]", "e.g. 1.0")
        need(self.stem_stride in (1, 2), "stem_stride", "1 or 2", "use 1 for 32x32 inputs, 2 for 224x224")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "> 0", "e.g. 0.4 for SGD, 2e-3 for AdamW")
        need(0 <= self.momentum < 1, "momentum", "in [0, 1)", "e.g. 0.9")
        need(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "two numbers in [0, 1)",
             "e.g. [0.9, 0.999]")
        need(self.weight_decay >= 0, "weight_decay", ">= 0", "e.g. 5e-4")
        need(self.warmup_epochs >= 0, "warmup_epochs", ">= 0", "e.g. 1")
        need(0 <= self.final_lr <= 1, "final_lr", "a fraction of lr in [0, 1]", "e.g. 0")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)", "e.g. 0.1")
        need(0 <= self.dropout < 1, "dropout", "in [0, 1)", "e.g. 0")
        need(0 <= self.drop_connect < 1, "drop_connect", "in [0, 1)", "e.g. 0")
        need(0 < self.bn_momentum <= 1, "bn_momentum", "in (0, 1] (PyTorch convention)", "e.g. 0.1")
        need(self.crop_padding >= 0, "crop_padding", ">= 0 pixels", "e.g. 4")
        need(self.cudnn_benchmark_limit >= 0, "cudnn_benchmark_limit", ">= 0 (0 = try every algorithm)", "e.g. 10")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or null", "e.g. 5.0")
        need(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1), "threads",
             "an integer >= 1 or null (the trial's CPUs)", "e.g. 1")
        check_device_name(self.device, "proxy.device")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def spec(self, genotype: Genotype, num_classes: int) -> ModelSpec:
        """The down-scaled proxy network of ``genotype``."""
        return ModelSpec(genotype, width=self.width, depth=self.depth, resolution=self.resolution,
                         dropout=self.dropout, num_classes=num_classes, stem_stride=self.stem_stride)

    def network_key(self, genotype: Genotype | str) -> tuple:
        """Scale-aware canonical key: equal for two genotypes iff their proxy networks are the same.

        ``search_spaces.network_key`` of the genotype scaled by this proxy's width and depth: besides the
        space's own aliases (a ``skip`` layer that builds nothing, a residual flag where none can exist),
        layer counts that round to the same depth here (1 and 2 layers at depth 0.5) are one network.
        A genotype string (``trials.jsonl``) is parsed first.  The classifier is left out (one per run).
        """
        from efficientnet import network_key

        if isinstance(genotype, str):
            genotype = Genotype.from_string(genotype)
        return network_key(self.spec(genotype, 1))

