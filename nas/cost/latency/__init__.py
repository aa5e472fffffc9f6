"""Hardware targets: measured latency, per-target lookup tables and the latency cost model.

* ``measure``: measurement settings and records, threads and pinning.
* ``targets``: latency of modules on PyTorch CPU, CUDA or ONNX Runtime.
* ``lut``: the per-layer lookup table and its versioned file.
* ``build``: which layers a space needs, measuring them, calibrating the sum.
* ``validate``: predicted vs measured latency of random genotypes.
* ``cost``: :class:`LatencyCost`, the ``latency`` cost of the MnasNet objective.

The names below are imported from their submodule on first use (PEP 562), so ``nas.cost.latency.measure``
(settings, no torch at import) can be read without importing torch -- ``nas profile --help`` does.
"""

import importlib

_WHERE = {
    'build_table': 'build',
    'calibrate': 'build',
    'fit_calibration': 'build',
    'measure_genotype': 'build',
    'measure_genotypes': 'build',
    'measure_layers': 'build',
    'reference_genotypes': 'build',
    'sample_genotypes': 'build',
    'sampled_layers': 'build',
    'space_layers': 'build',
    'LatencyCost': 'cost',
    'FORMAT': 'lut',
    'VERSION': 'lut',
    'LatencyTable': 'lut',
    'MissingLayerError': 'lut',
    'TableModel': 'lut',
    'classifier_layer': 'lut',
    'describe_layer': 'lut',
    'layer_module': 'lut',
    'model_layers': 'lut',
    'Measurement': 'measure',
    'MeasureSettings': 'measure',
    'cpu_threads': 'measure',
    'describe_target': 'targets',
    'measure_many': 'targets',
    'measure_module': 'targets',
    'prepare': 'targets',
    'target_context': 'targets',
    'ValidationReport': 'validate',
    'ValidationRow': 'validate',
    'spearman': 'validate',
    'validate_table': 'validate',
    'validation_genotypes': 'validate',
}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
