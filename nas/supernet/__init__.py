"""One-shot evaluation: a weight-sharing supernet trained once (optionally on Ray Train), scoring any path.

Public names (the contract of ``/work/wt/notes/supernet_api.md``): :class:`SupernetConfig`,
:class:`SupernetExperiment`, :func:`load_supernet_experiment`, :func:`train_supernet`,
:func:`load_supernet`, :class:`SupernetEvaluator`, :class:`Score`.  Ray is imported only by
``nas.supernet.ray_train`` (not imported here).
"""

from .checkpoint import load_supernet, read_checkpoint
from .config import SupernetConfig, SupernetExperiment, load_supernet_experiment
from .evaluate import PathScorer, Score, SupernetEvaluator
from .train import TrainSummary, train_supernet

__all__ = ["PathScorer", "Score", "SupernetConfig", "SupernetEvaluator", "SupernetExperiment", "TrainSummary",
           "load_supernet", "load_supernet_experiment", "read_checkpoint", "train_supernet"]
