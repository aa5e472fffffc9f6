"""EfficientNet-style networks for any genotype: stage configs, scaling, blocks, builder, counts."""

from .counting import count, count_arch, layer_cost, measure_macs
from .layout import LayerSpec, walk
from .model import EfficientNet, ModelSpec, build_model, create_model, model_spec, network_key, scaled_genotype
from .scaling import COEFFICIENTS, Coefficients, coefficients, round_filters, round_repeats, scale_arch
from .stages import DEFAULT_RESOLUTION, NUM_CLASSES, ArchConfig, StageConfig, stages_from_genotype


def count_spec(spec: ModelSpec) -> tuple[int, int]:
    """(params, MACs) of a :class:`ModelSpec` without building it."""
    return count_arch(spec.arch(), spec.resolution, spec.num_classes)


__all__ = [
    "DEFAULT_RESOLUTION", "NUM_CLASSES", "ArchConfig", "COEFFICIENTS", "Coefficients", "EfficientNet", "LayerSpec", "ModelSpec", "StageConfig",
    "build_model", "coefficients", "count", "count_arch", "count_spec", "create_model", "layer_cost", "measure_macs",
    "model_spec", "network_key", "round_filters", "round_repeats", "scale_arch", "scaled_genotype",
    "stages_from_genotype", "walk",
]
