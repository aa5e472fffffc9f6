"""Hardware targets: measured latency, per-target lookup tables and the latency cost model.

* ``measure``: measurement settings and records, threads and pinning.
* ``targets``: latency of modules on PyTorch CPU, CUDA or ONNX Runtime.
* ``lut``: the per-layer lookup table and its versioned file.
* ``build``: which layers a space needs, measuring them, calibrating the sum.
* ``validate``: predicted vs measured latency of random genotypes.
* ``cost``: :class:`LatencyCost`, the ``latency`` cost of the MnasNet objective.
"""

from .build import (build_table, calibrate, fit_calibration, measure_genotype, measure_genotypes, measure_layers,
                    reference_genotypes, sample_genotypes, sampled_layers, space_layers)
from .cost import LatencyCost
from .lut import (FORMAT, VERSION, LatencyTable, MissingLayerError, TableModel, classifier_layer, describe_layer,
                  layer_module, model_layers)
from .measure import Measurement, MeasureSettings, cpu_threads
from .targets import describe_target, measure_many, measure_module, prepare, target_context
from .validate import ValidationReport, ValidationRow, spearman, validate_table, validation_genotypes

__all__ = [
    "FORMAT", "VERSION", "LatencyCost", "LatencyTable", "Measurement", "MeasureSettings", "MissingLayerError",
    "TableModel", "ValidationReport", "ValidationRow", "build_table", "calibrate", "classifier_layer",
    "cpu_threads", "describe_layer", "describe_target", "fit_calibration", "layer_module",
    "measure_genotype", "measure_genotypes", "measure_layers", "measure_many",
    "measure_module", "model_layers", "reference_genotypes", "prepare", "sample_genotypes", "sampled_layers",
    "space_layers", "spearman", "target_context", "validate_table", "validation_genotypes",
]
