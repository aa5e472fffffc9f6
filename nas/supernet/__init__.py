"""One-shot evaluation's engine: a weight-sharing supernet trained once, scoring any path (floor 5 of nas/).

* ``train``: the sandwich rule, in-place distillation, data-parallel shards, per-epoch checkpoints,
  ``metrics.jsonl`` and TensorBoard curves (``train_supernet``, a plain function: Ray Train runs it
  per worker from ``nas.ray.supernet``);
* ``evaluate``: BN recalibration and held-out accuracy of a path (``PathScorer``, ``SupernetScorer`` ->
  ``Score``);
* ``fewshot``: few-shot training (``supernet.few_shot``): the split's optimizer state, each sub-supernet's
  paths (the split supernet itself is ``efficientnet.fewshot.SplitSupernet``);
* ``checkpoint``: the one-file checkpoint, read without running code, its metadata and tensor shapes
  checked (``read_checkpoint``, ``check_shapes``, ``load_supernet``).

Its experiment is ``nas.experiment.supernet``; the search's evaluator around it is
``nas.evaluators.supernet``.  No Ray here.
"""

from ..experiment.supernet import SupernetConfig, SupernetExperiment, load_supernet_experiment
from .checkpoint import check_shapes, load_supernet, read_checkpoint
from .evaluate import PathScorer, Score, SupernetScorer
from .train import TrainSummary, train_supernet

__all__ = ["PathScorer", "Score", "SupernetConfig", "SupernetExperiment", "SupernetScorer", "TrainSummary",
           "check_shapes", "load_supernet", "load_supernet_experiment", "read_checkpoint", "train_supernet"]
