"""Building a latency table: which layers, measuring them, calibrating the sum.

Which layers.  ``space_layers`` enumerates every distinct layer that any
genotype of a space can produce on a target model.  In the factorized space
(MnasNet section 4.1) a block's layers depend only on its own choices, the
filters of the block before it (its input channels) and the input size, which
the fixed strides determine; so each block's choices are crossed with the
previous block's filter choices and walked (``efficientnet.walk``, the one
walk) -- a few thousand small walks instead of 1e16 genotypes.  For the MnasNet
space at 224 that is 1,541 layers; ``sampled_layers`` tables only the
layers of N sampled genotypes (plus B0 where it is in the space), and a
``LatencyCost`` with ``measure_missing`` fills in the rest on demand.

Calibration.  The isolated layer times do not add up exactly to the model's
time: inside the network a layer starts with colder caches and allocates
while its neighbours hold memory, and there is one call of the model instead
of one per layer.  ``calibrate`` measures a few
genotypes end to end (B0 where it is in the space, the rest sampled with the
table's seed) and fits ``measured = scale * sum + offset_ms`` with the
Theil-Sen estimator, which one badly disturbed measurement cannot swing (a
scale alone when fewer than three genotypes or a non-positive slope);
``nas profile --validate`` then checks the prediction on other genotypes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from functools import partial

import numpy as np

from efficientnet import LayerSpec, build_model
from search_spaces import BlockGene, Genotype, SearchSpace, named_genotype

from ..target import TargetModel
from .lut import LatencyTable, TableModel, layer_input_shape, layer_module, model_layers
from .measure import Measurement, MeasureSettings
from .targets import describe_target, measure_many

log = logging.getLogger(__name__)


def _block_layers(genotype: Genotype, target: TargetModel, block: int) -> list[LayerSpec]:
    layers = model_layers(genotype, target)
    arch = target.spec(genotype).arch()
    start = 1 + sum(stage.layers for stage in arch.stages[:block])
    return layers[start:start + arch.stages[block].layers]


def space_layers(space: SearchSpace, target: TargetModel) -> list[LayerSpec]:
    """Every distinct layer (by ``LayerSpec.key()``) any genotype of ``space`` has on ``target``."""
    base = space.decode([0] * len(space.decision_sizes))
    found: dict[tuple, LayerSpec] = {}

    def add(specs) -> None:
        for spec in specs:
            found.setdefault(spec.key(), spec)

    positions = space.positions
    last = len(positions) - 1
    for i, position in enumerate(positions):
        previous = positions[i - 1].values("filters") if i else (None,)
        for prev in previous:
            blocks = list(base.blocks)
            if prev is not None:
                blocks[i - 1] = replace(blocks[i - 1], filters=prev)
            for combo in position.combos():
                blocks[i] = BlockGene(**combo)
                genotype = Genotype(tuple(blocks), base.frame)
                add(_block_layers(genotype, target, i))
                if i == 0:
                    add(model_layers(genotype, target)[:1])  # the stem
                if i == last:
                    add(model_layers(genotype, target)[-2:])  # head and classifier
    return list(found.values())


def reference_genotypes(space: SearchSpace) -> list[Genotype]:
    """B0 when it is a point of ``space`` (it is of the MnasNet space), else nothing."""
    b0 = named_genotype("b0")
    return [b0] if space.contains(b0) else []


def sample_genotypes(space: SearchSpace, count: int, rng: np.random.Generator,
                     exclude: set[Genotype] = frozenset()) -> list[Genotype]:
    """``count`` distinct genotypes drawn uniformly, none of ``exclude`` (bounded tries)."""
    out: list[Genotype] = []
    seen = set(exclude)
    for _ in range(max(100, 50 * count)):
        if len(out) == count:
            break
        g = space.sample(rng)
        if g not in seen:
            seen.add(g)
            out.append(g)
    if len(out) < count:
        raise ValueError(f"space {space.name!r} gave only {len(out)} distinct genotypes of the {count} asked for")
    return out


def sampled_layers(genotypes: list[Genotype], target: TargetModel) -> list[LayerSpec]:
    """The distinct layers of ``genotypes`` on ``target``."""
    found: dict[tuple, LayerSpec] = {}
    for g in genotypes:
        for spec in model_layers(g, target):
            found.setdefault(spec.key(), spec)
    return list(found.values())


class _Progress:
    def __init__(self, what: str, every_s: float = 10.0) -> None:
        self.what, self.every_s = what, every_s
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total > 1 and (now - self.last >= self.every_s or done == total):
            self.last = now
            left = (now - self.start) / done * (total - done)
            log.info("measured %d/%d %s (%.0f s, about %.0f s left)", done, total, self.what, now - self.start, left)


def measure_layers(table: LatencyTable, layers: list[LayerSpec]) -> int:
    """Measure the layers of ``layers`` that ``table`` lacks and add them; returns how many were added."""
    todo = table.missing(layers)
    items = [(partial(layer_module, spec), layer_input_shape(spec)) for spec in todo]
    for spec, m in zip(todo, measure_many(items, table.settings, chunk=256, progress=_Progress("layers"))):
        table.entries[spec.key()] = m
    return len(todo)


def measure_genotypes(genotypes: list[Genotype], target: TargetModel, settings: MeasureSettings) -> list[Measurement]:
    """End-to-end latency of each genotype's target model (built by ``efficientnet.build_model``), interleaved."""
    def make(genotype: Genotype):
        return lambda: build_model(target.spec(genotype))

    shape = (3, target.resolution, target.resolution)
    return measure_many([(make(g), shape) for g in genotypes], settings, chunk=32, progress=_Progress("models"))


def measure_genotype(genotype: Genotype, target: TargetModel, settings: MeasureSettings) -> Measurement:
    """End-to-end latency of one genotype's target model."""
    return measure_genotypes([genotype], target, settings)[0]


def fit_calibration(raw_ms: list[float], measured_ms: list[float]) -> tuple[float, float]:
    """(scale, offset_ms) with ``measured ~= scale * raw + offset``, robust to a few noisy measurements.

    Theil-Sen (median of the pairwise slopes, then the median intercept) from
    three genotypes on; with fewer, or a non-positive slope, a scale alone (the
    median ratio measured / raw).
    """
    raw, meas = np.asarray(raw_ms, float), np.asarray(measured_ms, float)
    if raw.size == 0:
        return 1.0, 0.0
    if raw.size >= 3:
        i, j = np.triu_indices(raw.size, k=1)
        keep = raw[j] != raw[i]
        if keep.any():
            scale = float(np.median((meas[j] - meas[i])[keep] / (raw[j] - raw[i])[keep]))
            if scale > 0:
                return scale, float(np.median(meas - scale * raw))
    return float(np.median(meas / raw)), 0.0


def calibrate(table: LatencyTable, genotypes: list[Genotype]) -> dict:
    """Measure ``genotypes`` end to end, fit the table's scale and offset, return the fit's record."""
    target = table.model.target()
    raw = [table.layer_sum(model_layers(g, target)) for g in genotypes]
    stat = table.settings.statistic
    measured = [m.value(stat) for m in measure_genotypes(genotypes, target, table.settings)]
    table.scale, table.offset_ms = fit_calibration(raw, measured)
    pred = [table.calibrated(r) for r in raw]
    errors = [abs(p - m) / m for p, m in zip(pred, measured)]
    table.calibration = {"genotypes": [g.to_string() for g in genotypes], "layer_sum_ms": raw,
                         "measured_ms": measured, "mean_abs_rel_error": float(np.mean(errors)) if errors else None}
    log.info("calibration on %d genotypes: measured = %.3f * layer sum %+.3f ms (fit error %.1f%%)",
             len(genotypes), table.scale, table.offset_ms, 100 * (table.calibration["mean_abs_rel_error"] or 0))
    return table.calibration


def build_table(space: SearchSpace, target: TargetModel, settings: MeasureSettings, samples: int | None = None,
                calibrate_genotypes: int = 5, seed: int = 0) -> LatencyTable:
    """Measure a latency table for ``space`` on ``target``.

    ``samples``: table only the layers of that many sampled genotypes (plus B0
    where in the space) instead of the whole space.  ``calibrate_genotypes``:
    how many genotypes (B0 first, then sampled ones) calibrate the sum; 0 turns
    calibration off (scale 1, offset 0).
    """
    if samples is not None and samples < 1:
        raise ValueError(f"samples must be >= 1 (or None for the whole space), got {samples}")
    if calibrate_genotypes < 0:
        raise ValueError(f"calibrate_genotypes must be >= 0, got {calibrate_genotypes}")
    rng = np.random.default_rng(seed)
    refs = reference_genotypes(space)
    drawn = sample_genotypes(space, max(samples or 0, calibrate_genotypes), rng, exclude=set(refs))
    cal = (refs + drawn)[:calibrate_genotypes]
    if samples is None:
        layers = space_layers(space, target)
    else:
        layers = sampled_layers(refs + drawn[:samples] + cal, target)
    info = describe_target(settings)
    table = LatencyTable(settings=settings, model=TableModel.of(space.name, target), target=info)
    log.info("measuring %d distinct layers of space %r at resolution %d on %s (%s, %d threads)", len(layers),
             space.name, target.resolution, settings.backend, info["device"], settings.threads)
    load_before = _load()
    measure_layers(table, layers)
    table.target["layers_from"] = "space" if samples is None else f"{samples} sampled genotypes (seed {seed})"
    table.target["seed"] = seed
    table.target["space"] = space.to_declaration()  # validation resamples it: a user's space has no shipped name
    if cal:
        calibrate(table, cal)
    table.target["noise"] = {**table.noise(), "load": [min(load_before, _load()), max(load_before, _load())],
                             "cpus": os.cpu_count()}
    return table


def _load() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return 0.0
