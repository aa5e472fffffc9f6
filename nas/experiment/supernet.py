"""The supernet experiment (``nas supernet train``): typed, strict sections; YAML only at the edge.

A supernet YAML has the sections ``description``, ``space``, ``data`` (:class:`nas.data.DataConfig`),
``proxy`` (:class:`nas.experiment.proxy.ProxyConfig`), ``supernet`` (:class:`SupernetConfig`), ``output``
and ``ray`` (:mod:`nas.experiment.sections`); it is loaded by the one loader (``nas.experiment.load``).  The supernet is built at the PROXY network's
size -- ``proxy.width``, ``depth``, ``resolution``, ``stem_stride`` -- exactly as a standalone
proxy trial is, and takes from ``proxy`` what makes a path behave like that trial
(``dropout``, ``bn_momentum``, ``label_smoothing``, augmentation, ``amp``, ``channels_last``,
``device``, ``eval_batch_size``, ``evaluate_on``); the fidelity bench trains standalone
candidates with the same ``proxy`` section.  ``supernet`` holds the supernet's own training
recipe (epochs, optimiser, the sandwich rule, distillation) and BN recalibration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..config import ConfigError, from_dict, to_dict
from ..data import DataConfig
from .proxy import ProxyConfig
from .sections import OutputConfig, RayConfig
from .space import resolve_space


@dataclass(frozen=True)
class SupernetConfig:
    """YAML section ``supernet``: how the weight-sharing supernet is trained and how paths are scored.

    Optimiser fields mean what the ``proxy`` fields of the same name mean (SGD/AdamW, one-cycle
    warm-up then ``schedule``), with defaults for a long multi-path run.
    """

    epochs: int = 30
    #: Global batch per step (split evenly across workers: the same optimisation for any ``workers``).
    batch_size: int = 128
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 5e-4
    schedule: Literal["linear", "cosine", "constant"] = "cosine"
    warmup_epochs: float = 1.0
    final_lr: float = 0.0
    grad_clip: float | None = None
    #: Sandwich rule (BigNAS, Yu et al. 2020, arXiv:2003.11142, section 3.1): the largest and the
    #: smallest path every step, plus ``random_paths`` uniformly sampled ones (SPOS's uniform
    #: single-path sampling, Guo et al. 2020, when ``sandwich`` is off).
    sandwich: bool = True
    random_paths: int = 2
    #: In-place distillation (BigNAS section 3.1, from Slimmable networks): every path but the
    #: largest learns the largest path's soft predictions (needs ``sandwich``).
    distill: bool = True
    #: OFA's kernel transformation matrices for the smaller kernels (see efficientnet.dynamic_ops).
    kernel_transform: bool = False
    #: Sepconv (MBConv expansion 1) shares MBConv's leading channels (true) or has weights of its own.
    share_sepconv: bool = False
    #: Weights of their own per value of these fields (SPOS's separate choice blocks); empty: every op family
    #: shares one set per position, options being slices of it (OFA).  [expand, kernel]: each (op, expand,
    #: kernel) option its own weights.  See efficientnet.supernet.
    separate: tuple[Literal["expand", "kernel"], ...] = ()
    #: Progressive shrinking (OFA, Cai et al. 2020, arXiv:1908.09791, section 3.2), generalised: the epochs are
    #: cut into this many equal phases; in phase p (0-based) of P each decision of a sampled path keeps the
    #: largest path's option with probability (P-1-p)/P, else draws uniformly -- the sampled choices widen from
    #: the largest network to the whole space.  1: off (uniform sampling from the first step).
    shrink_phases: int = 1
    #: Train at this input size (null: ``proxy.resolution``); paths are always recalibrated and scored at
    #: ``proxy.resolution``.  A smaller size buys more steps in the same time.
    train_resolution: int | None = None
    #: Few-shot NAS (Zhao et al. 2021, arXiv:2006.06863): after this many epochs of one-shot training, split the
    #: supernet into one sub-supernet per option of decision ``few_shot_decision`` (an index of the space's
    #: decisions; 0: its first, NAS-Bench-Macro's first layer op), each starting from the shared weights and
    #: trained from then on only on paths with its option; a path is scored by its own sub-supernet.  Equal
    #: budget: after the split, step i trains sub-supernet i mod K (its own sandwich of the same paths per
    #: step), so steps and path-steps stay those of the one-shot run.  0: no split.
    few_shot: int = 0
    few_shot_decision: int = 0
    #: Zero-init the classifier (see efficientnet.supernet.Supernet.zero_init).
    zero_init: bool = True
    #: BN recalibration before a path is scored (SPOS section 3.3): this many fixed training batches
    #: of ``calib_batch_size`` un-augmented images (the same images for every path).
    calib_batches: int = 4
    calib_batch_size: int = 128
    #: Seed of the weights, the path sampling, the data order and the calibration images.
    seed: int = 0
    #: Supernets trained with seeds ``seed, seed+1, ...`` (members 1.. in ``<checkpoint stem>-member<k>.pt``
    #: beside the checkpoint); a path's score is the mean of their accuracies: averaging independently
    #: trained models cancels the seed-to-seed scatter (deep ensembles, Lakshminarayanan et al. 2017).
    ensemble: int = 1
    #: Data-parallel workers of Ray Train (1 = a plain process, no Ray); ``--workers`` overrides.
    workers: int = 1
    cpus_per_worker: float = 1.0
    #: Checkpoint file name inside the run dir (``output.dir``/``output.name``).
    checkpoint: str = "supernet.pt"

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, rule: str, fix: str) -> None:
            if not ok:
                raise ValueError(f"supernet.{name} must be {rule}, got {getattr(self, name)!r}; {fix}")

        need(self.epochs >= 1, "epochs", ">= 1", "e.g. 20")
        need(1 <= self.ensemble <= 16, "ensemble", "in [1, 16]", "e.g. 2")
        need(self.batch_size >= 1, "batch_size", ">= 1", "e.g. 128")
        need(self.lr > 0 and math.isfinite(self.lr), "lr", "> 0", "e.g. 0.1")
        need(0 <= self.momentum < 1, "momentum", "in [0, 1)", "e.g. 0.9")
        need(self.weight_decay >= 0, "weight_decay", ">= 0", "e.g. 5e-4")
        need(self.warmup_epochs >= 0, "warmup_epochs", ">= 0", "e.g. 1")
        need(0 <= self.final_lr <= 1, "final_lr", "a fraction in [0, 1] of lr", "e.g. 0")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or null", "e.g. 5.0")
        need(self.random_paths >= 0, "random_paths", ">= 0", "e.g. 2")
        need(self.sandwich or self.random_paths >= 1, "random_paths",
             ">= 1 when sandwich is off (a step needs a path)", "set random_paths: 1 or sandwich: true")
        need(self.sandwich or not self.distill, "distill", "false when sandwich is off (the teacher is the "
             "largest path of the sandwich)", "set distill: false or sandwich: true")
        need(len(set(self.separate)) == len(self.separate), "separate", "a list of distinct fields",
             "e.g. [expand, kernel]")
        object.__setattr__(self, "separate", tuple(self.separate))
        need(self.shrink_phases >= 1, "shrink_phases", ">= 1 (1: no progressive shrinking)", "e.g. 3")
        need(self.shrink_phases <= self.epochs, "shrink_phases", f"<= epochs ({self.epochs}): a phase is whole epochs",
             f"e.g. {min(3, self.epochs)}")
        need(self.train_resolution is None or self.train_resolution >= 8, "train_resolution", ">= 8 or null",
             "e.g. 16")
        need(0 <= self.few_shot < self.epochs, "few_shot", f"in [0, epochs) ({self.epochs}): the one-shot epochs "
             "before the split, 0 for none", f"e.g. {self.epochs // 2}")
        need(self.few_shot_decision >= 0, "few_shot_decision", ">= 0 (an index of the space's decisions)", "e.g. 0")
        need(self.calib_batches >= 1, "calib_batches", ">= 1", "e.g. 4")
        need(self.calib_batch_size >= 2, "calib_batch_size", ">= 2 (BatchNorm needs a batch)", "e.g. 128")
        need(self.workers >= 1, "workers", ">= 1", "e.g. 2")
        need(self.cpus_per_worker > 0, "cpus_per_worker", "> 0", "e.g. 1")
        need(bool(self.checkpoint) and "/" not in self.checkpoint and self.checkpoint not in (".", ".."),
             "checkpoint", "a file name (no folders)", "e.g. supernet.pt")
        need(self.batch_size % self.workers == 0, "batch_size",
             f"divisible by workers ({self.workers})", f"e.g. {self.batch_size // self.workers * self.workers or self.workers}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    @property
    def paths_per_step(self) -> int:
        return (2 if self.sandwich else 0) + self.random_paths


@dataclass(frozen=True)
class SupernetExperiment:
    KIND: ClassVar[str] = "supernet"
    COMMAND: ClassVar[str] = "supernet train"
    CONFIG_FILE: ClassVar[str] = "config.yaml"
    PATHS: ClassVar[tuple[str, ...]] = ("data.path", "data.cache_dir", "output.dir", "output.storage")

    description: str = ""
    #: A shipped space name, a YAML declaration file (relative to the experiment file) or an inline
    #: declaration; loading turns a file or mapping into the declaration (``nas.experiment.space``).
    space: Any = "mnasnet"
    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    output: OutputConfig = field(default_factory=lambda: OutputConfig(name="supernet"))
    ray: RayConfig = field(default_factory=RayConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output.dir).expanduser().resolve() / self.output.name

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / self.supernet.checkpoint

    @property
    def search_space(self):
        return resolve_space(self.space)

    def to_dict(self) -> dict:
        return to_dict(self)

    def holds_run(self, run_dir: Path) -> bool:
        """A checkpoint, or the config of a run stopped before its first epoch (``--resume`` starts it)."""
        return (Path(run_dir) / self.supernet.checkpoint).is_file() or (Path(run_dir) / self.CONFIG_FILE).is_file()

    def check(self) -> None:
        from .load import check_data_path

        space, d = self.search_space, self.supernet.few_shot_decision
        check_data_path(self.data)
        if self.supernet.few_shot and (d >= len(space.decision_sizes) or space.decision_sizes[d] < 2):
            names = ", ".join(f"{i}: {n}" for i, n in enumerate(space.decision_names[:6]))
            raise ConfigError(f"supernet.few_shot_decision: {d} is not a decision of space {space.name!r} with "
                              f"2 or more options; use one of {names}{', ...' if len(space.decision_names) > 6 else ''}")
        if self.proxy.drop_connect:
            raise ConfigError(f"proxy.drop_connect: the supernet has no stochastic depth, got "
                              f"{self.proxy.drop_connect}; set proxy.drop_connect: 0")


def load_supernet_experiment(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                             data: dict | None = None) -> SupernetExperiment:
    """Read, override, type-check and check a supernet experiment (``nas.experiment.load.load``)."""
    from .load import load

    return load(SupernetExperiment, path, overrides, data)


def experiment_from_dict(data: dict) -> SupernetExperiment:
    """The inverse of ``SupernetExperiment.to_dict`` (how a Ray worker receives the experiment)."""
    return from_dict(SupernetExperiment, data)


def arch_options(exp: SupernetExperiment, num_classes: int) -> dict:
    """The ``Supernet`` keyword arguments of ``exp`` (the proxy network's size)."""
    p = exp.proxy
    return dict(width=p.width, depth=p.depth, resolution=p.resolution, stem_stride=p.stem_stride,
                num_classes=num_classes, dropout=p.dropout, bn_momentum=p.bn_momentum,
                kernel_transform=exp.supernet.kernel_transform, share_sepconv=exp.supernet.share_sepconv,
                separate=exp.supernet.separate)


def member_path(checkpoint: str | Path, k: int) -> Path:
    """Member ``k`` of an ensemble: 0 is ``checkpoint`` itself, ``k >= 1`` is ``<stem>-member<k><suffix>`` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint if k == 0 else checkpoint.with_name(f"{checkpoint.stem}-member{k}{checkpoint.suffix}")


def member_experiment(exp: SupernetExperiment, k: int) -> SupernetExperiment:
    """The experiment that trains member ``k``: seed ``seed + k``, its own checkpoint file, the same run dir; a
    member ``k >= 1`` is a single supernet (``ensemble: 1``: loaded alone it scores alone)."""
    if k == 0:
        return exp
    cfg = exp.supernet
    return replace(exp, supernet=replace(cfg, seed=cfg.seed + k, checkpoint=member_path(cfg.checkpoint, k).name,
                                         ensemble=1))

