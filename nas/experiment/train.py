"""Typed settings of ``nas train``: the EfficientNet recipe (section ``train``), the model, the workers.

Every default of :class:`TrainConfig` is the recipe of Tan & Le 2019
(arXiv:1905.11946, section 5.2) as released in tensorflow/tpu
``models/official/efficientnet`` (``main.py`` flags, ``utils.py``
``build_learning_rate``/``build_optimizer``, ``efficientnet_builder.py``):
RMSProp (decay 0.9, momentum 0.9, epsilon 1e-3 inside the square root),
BatchNorm decay 0.99, weight decay 1e-5, learning rate 0.016 per 256 images
(= 0.256 per 4,096) with a 5-epoch linear warm-up and a 0.97 staircase decay
every 2.4 epochs, label smoothing 0.1, AutoAugment, stochastic depth with
survival 0.8, the dropout of the coefficient table (0.2 for B0 .. 0.5 for B7),
an exponential moving average of the weights (0.9999), 350 epochs.  The README
lists each setting with its source.  An experiment file narrows the recipe
for a small run (``experiments/train_quick.yaml``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ..config import ConfigError, to_dict
from ..data import DataConfig
from .sections import OutputConfig

#: A checkpoint folder of a training run dir (``nas.train.checkpoint``): ``epoch_NNNN``.
EPOCH_DIR = re.compile(r"^epoch_(\d{4,})$")
#: The file every checkpoint folder holds once it is complete.
CHECKPOINT_STATE = "state.pt"


def _need(ok: bool, section: str, obj: object, name: str, rule: str, fix: str) -> None:
    if not ok:
        raise ValueError(f"{section}.{name} must be {rule}, got {getattr(obj, name)!r}; {fix}")


@dataclass(frozen=True)
class TrainConfig:
    """YAML section ``train``: the training recipe (defaults: the EfficientNet reference)."""

    epochs: int = 350
    #: Global batch (all workers together); each of N workers trains on batch_size / N images a step.
    batch_size: int = 4096
    eval_batch_size: int = 512
    #: Peak learning rate for a global batch of ``lr_batch`` images, scaled linearly to ``batch_size``.
    lr: float = 0.256
    lr_batch: int = 4096
    #: Linear warm-up from 0 (epochs, may be fractional), then lr * decay_rate ** floor(step / decay steps).
    warmup_epochs: float = 5.0
    decay_epochs: float = 2.4
    decay_rate: float = 0.97
    #: ``rmsprop`` in TensorFlow's convention (see ``nas.train.optim.RMSpropTF``), ``sgd`` (momentum), ``adamw``.
    optimizer: Literal["rmsprop", "sgd", "adamw"] = "rmsprop"
    #: RMSProp's decay of the squared-gradient average (TF ``decay``, torch ``alpha``).
    rmsprop_decay: float = 0.9
    momentum: float = 0.9
    #: RMSProp epsilon, added INSIDE the square root as TF does (torch's RMSprop adds it outside).
    epsilon: float = 1e-3
    #: L2 penalty on every variable except BatchNorm's (the reference adds wd * sum(w^2) / 2 to the loss).
    weight_decay: float = 1e-5
    label_smoothing: float = 0.1
    #: Dropout before the classifier; null = the coefficient table's value of the model (0.2 for B0 .. 0.5 for B7).
    dropout: float | None = None
    #: Probability of keeping a block's residual branch at the last block (linear in depth from 1).
    survival: float = 0.8
    #: BatchNorm moving-average decay in TF's convention (torch momentum = 1 - bn_decay) and its epsilon.
    bn_decay: float = 0.99
    bn_eps: float = 1e-3
    #: Exponential moving average of the weights and BatchNorm statistics; null = off.
    ema_decay: float | None = 0.9999
    #: TF's ``num_updates``: the decay is min(ema_decay, (1 + step) / (10 + step)) early in training.
    ema_warmup: bool = True
    #: Photometric/geometric policy after the crop: AutoAugment (policy v0), RandAugment, or none.
    augment: Literal["autoaugment", "randaugment", "none"] = "autoaugment"
    randaugment_layers: int = 2
    randaugment_magnitude: float = 10.0
    #: ``inception``: random area 8-100 %, aspect 3/4-4/3 crop resized to the resolution (the reference);
    #: ``pad``: zero-pad ``crop_padding`` pixels and crop back (the CIFAR recipe); ``none``.
    crop: Literal["inception", "pad", "none"] = "inception"
    crop_padding: int = 4
    flip: bool = True
    #: Evaluation: central crop of this fraction of the image, resized to the resolution (224 / 256).
    eval_crop: float = 0.875
    #: bf16 autocast and channels_last: ``auto`` = on a GPU only.
    amp: Literal["auto", "on", "off"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    grad_clip: float | None = None
    #: Start the classifier and the last BatchNorm scale of residual blocks at zero (Goyal et al. 2017,
    #: arXiv:1706.02677); not in the reference, which trains 350 epochs; it speeds up short runs.
    zero_init: bool = False
    seed: int = 0
    #: Checkpoints kept in the run dir (the newest; one is written every epoch).
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str, fix: str) -> None:
            _need(ok, "train", self, name, rule, fix)

        need(self.epochs >= 1, "epochs", ">= 1", "e.g. 350")
        need(self.batch_size >= 1, "batch_size", ">= 1", "e.g. 4096 (all workers together)")
        need(self.eval_batch_size >= 1, "eval_batch_size", ">= 1", "e.g. 512")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "> 0", "e.g. 0.256 (per lr_batch images)")
        need(self.lr_batch >= 1, "lr_batch", ">= 1", "e.g. 4096")
        need(self.warmup_epochs >= 0, "warmup_epochs", ">= 0", "e.g. 5")
        need(self.decay_epochs > 0, "decay_epochs", "> 0", "e.g. 2.4")
        need(0 < self.decay_rate <= 1, "decay_rate", "in (0, 1]", "e.g. 0.97")
        need(0 <= self.rmsprop_decay < 1, "rmsprop_decay", "in [0, 1)", "e.g. 0.9")
        need(0 <= self.momentum < 1, "momentum", "in [0, 1)", "e.g. 0.9")
        need(self.epsilon > 0, "epsilon", "> 0", "e.g. 1e-3")
        need(self.weight_decay >= 0, "weight_decay", ">= 0", "e.g. 1e-5")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)", "e.g. 0.1")
        need(self.dropout is None or 0 <= self.dropout < 1, "dropout", "in [0, 1) or null", "e.g. 0.2")
        need(0 < self.survival <= 1, "survival", "in (0, 1]", "e.g. 0.8 (1 = no stochastic depth)")
        need(0 <= self.bn_decay < 1, "bn_decay", "in [0, 1) (TF convention)", "e.g. 0.99")
        need(self.bn_eps > 0, "bn_eps", "> 0", "e.g. 1e-3")
        need(self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", "in (0, 1) or null (off)", "e.g. 0.9999")
        need(self.randaugment_layers >= 1, "randaugment_layers", ">= 1", "e.g. 2")
        need(0 <= self.randaugment_magnitude <= 30, "randaugment_magnitude", "in [0, 30]", "e.g. 10")
        need(self.crop_padding >= 0, "crop_padding", ">= 0 pixels", "e.g. 4")
        need(0 < self.eval_crop <= 1, "eval_crop", "a fraction in (0, 1]", "e.g. 0.875, or 1 for small images")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or null", "e.g. 5.0")
        need(self.keep_checkpoints >= 1, "keep_checkpoints", ">= 1", "e.g. 2")

    @property
    def bn_momentum(self) -> float:
        """The torch BatchNorm momentum of ``bn_decay``: running = (1 - m) * running + m * batch."""
        return 1.0 - self.bn_decay

    @property
    def drop_connect_rate(self) -> float:
        return 1.0 - self.survival

    def peak_lr(self) -> float:
        """``lr`` scaled linearly from ``lr_batch`` to the global ``batch_size`` (the reference's rule)."""
        return self.lr * self.batch_size / self.lr_batch


@dataclass(frozen=True)
class ModelConfig:
    """YAML section ``model``: the scale of the genotype (the command line's --model/--phi/--width... win).

    ``name`` picks a row of the official coefficient table; ``phi`` instead scales by equation 3
    (alpha 1.2, beta 1.1, gamma 1.15); ``width``/``depth``/``resolution`` override either.
    """

    name: str | None = "efficientnet-b0"
    phi: int | None = None
    width: float | None = None
    depth: float | None = None
    resolution: int | None = None
    #: 1 keeps small (32x32) inputs large enough for the five stride-2 stages; 2 is EfficientNet's stem;
    #: null: the genotype's own (its frame's stem stride, 2 unless the genotype says ``stem<N>_s1``).
    stem_stride: int | None = None
    #: ``same``: TensorFlow's asymmetric "SAME" padding (lukemelas' layout gives the same logits);
    #: ``symmetric``: PyTorch's (torchvision's and timm's layout).
    padding: Literal["symmetric", "same"] = "symmetric"

    def __post_init__(self) -> None:
        from efficientnet import COEFFICIENTS

        if self.name is not None and self.name not in COEFFICIENTS:
            raise ValueError(f"model.name must be one of {', '.join(COEFFICIENTS)} or null, got {self.name!r}")
        if self.phi is not None and self.name is not None and self.name != "efficientnet-b0":
            raise ValueError(f"model.name ({self.name}) and model.phi ({self.phi}) both set the scale; set one "
                             "of them (name: null with phi)")
        _need(self.phi is None or self.phi >= 0, "model", self, "phi", "an integer >= 0 or null", "e.g. 1")
        _need(self.width is None or self.width > 0, "model", self, "width", "> 0 or null", "e.g. 0.25")
        _need(self.depth is None or self.depth > 0, "model", self, "depth", "> 0 or null", "e.g. 1.0")
        _need(self.resolution is None or self.resolution >= 8, "model", self, "resolution", ">= 8 or null",
              "e.g. 224")
        _need(self.stem_stride in (None, 1, 2), "model", self, "stem_stride", "1, 2 or null (the genotype's)",
              "1 for 32x32 inputs")


@dataclass(frozen=True)
class WorkersConfig:
    """YAML section ``workers``: the Ray Train worker group (one DDP process per worker)."""

    count: int = 1
    cpus: float = 1.0
    #: One GPU per worker: ``auto`` = when the Ray cluster has GPUs.
    gpu: Literal["auto", "on", "off"] = "auto"
    #: torch intra-op threads per worker (null = ``cpus``).
    threads: int | None = None
    #: The local Ray only: CPUs it may use (null = all).
    num_cpus: int | None = None
    #: Retries of the worker group after a worker died (Ray Train FailureConfig.max_failures).
    max_failures: int = 0

    def __post_init__(self) -> None:
        _need(self.count >= 1, "workers", self, "count", ">= 1", "e.g. 2")
        _need(self.cpus > 0, "workers", self, "cpus", "> 0", "e.g. 1")
        _need(self.threads is None or self.threads >= 1, "workers", self, "threads", ">= 1 or null", "e.g. 1")
        _need(self.max_failures >= 0, "workers", self, "max_failures", ">= 0", "e.g. 0")


@dataclass(frozen=True)
class TrainExperiment:
    """A ``nas train`` YAML: sections model, train, data, workers, output (+ ``address`` of a Ray cluster)."""

    KIND: ClassVar[str] = "training"
    COMMAND: ClassVar[str] = "train"
    CONFIG_FILE: ClassVar[str] = "train_config.yaml"
    PATHS: ClassVar[tuple[str, ...]] = ("data.path", "data.cache_dir", "output.dir", "output.storage")

    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    workers: WorkersConfig = field(default_factory=WorkersConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(name="train"))
    #: An existing Ray cluster ('auto' on a head node, ray://host:10001); null = start a local Ray on 127.0.0.1.
    address: str | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.output.dir).expanduser().resolve() / self.output.name

    def to_dict(self) -> dict:
        return to_dict(self)

    @staticmethod
    def holds_run(run_dir: Path) -> bool:
        """A complete checkpoint folder (``epoch_NNNN/state.pt``) is there."""
        run_dir = Path(run_dir)
        return run_dir.is_dir() and any(EPOCH_DIR.match(p.name) and (p / CHECKPOINT_STATE).is_file()
                                        for p in run_dir.iterdir())

    def check(self) -> None:
        from .load import check_data_path

        if self.workers.count > self.train.batch_size or self.train.batch_size % self.workers.count:
            raise ConfigError(f"train.batch_size ({self.train.batch_size}) must be a multiple of workers.count "
                              f"({self.workers.count}): each worker trains on an equal share of the global batch")
        check_data_path(self.data)


def load_train_experiment(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                          data: dict | None = None) -> TrainExperiment:
    """Read a ``nas train`` YAML (or ``data``), apply ``--set`` overrides, type-check, fix paths, check."""
    from .load import load

    return load(TrainExperiment, path, overrides, data)


__all__ = ["CHECKPOINT_STATE", "EPOCH_DIR", "ModelConfig", "TrainConfig", "TrainExperiment", "WorkersConfig",
           "load_train_experiment"]
