"""Does the table predict what the device measures?  End-to-end validation of a latency table.

``validate_table`` measures genotypes end to end on the table's target and
compares with the table's prediction: the mean absolute relative error
``mean(|pred - meas| / meas)`` (the accuracy figure FBNet and ProxylessNAS
report for their latency models) and Spearman's rank correlation (what a
search needs: the ordering of candidates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from search_spaces import Genotype, SearchSpace, get_space

from ...stats import spearman
from .build import measure_genotypes, measure_layers, sample_genotypes
from .lut import LatencyTable, model_layers
from .measure import Measurement, noise_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationRow:
    genotype: str
    predicted_ms: float
    measured_ms: float
    iqr_ms: float
    measurement: Measurement | None = None

    @property
    def rel_error(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms


@dataclass(frozen=True)
class ValidationReport:
    rows: tuple[ValidationRow, ...]
    added_layers: int = 0

    @property
    def mean_abs_rel_error(self) -> float:
        return float(np.mean([abs(r.rel_error) for r in self.rows]))

    @property
    def max_abs_rel_error(self) -> float:
        return float(np.max([abs(r.rel_error) for r in self.rows]))

    @property
    def spearman(self) -> float:
        return spearman([r.predicted_ms for r in self.rows], [r.measured_ms for r in self.rows])

    def noise(self, clock: str = "wall") -> dict:
        """How noisy the end-to-end measurements of the validation models were (``noise_summary``)."""
        return noise_summary([r.measurement for r in self.rows if r.measurement is not None], clock)

    def summary(self, clock: str = "wall") -> dict:
        return {"genotypes": len(self.rows), "mean_abs_rel_error": self.mean_abs_rel_error,
                "max_abs_rel_error": self.max_abs_rel_error, "spearman": self.spearman,
                "added_layers": self.added_layers, "measurement_noise": self.noise(clock)}


def validate_table(table: LatencyTable, genotypes: list[Genotype], measure_missing: bool = False) -> ValidationReport:
    """Predicted vs measured latency of ``genotypes`` on the table's target.

    ``measure_missing`` measures layers the table lacks first (and adds them to
    ``table``); otherwise a missing layer raises ``MissingLayerError``.
    """
    if len(genotypes) < 2:
        raise ValueError(f"validation needs at least 2 genotypes, got {len(genotypes)}")
    target = table.model.target()
    added = 0
    if measure_missing:
        layers = [spec for g in genotypes for spec in model_layers(g, target)]
        added = measure_layers(table, layers)
    predicted = [table.predict(g) for g in genotypes]  # before measuring: fail fast on a missing layer
    stat = table.settings.statistic
    measured = measure_genotypes(genotypes, target, table.settings)
    rows = tuple(ValidationRow(g.to_string(), pred, m.value(stat), m.iqr_ms, m)
                 for g, pred, m in zip(genotypes, predicted, measured))
    for row in rows:
        log.debug("predicted %.3f ms, measured %.3f ms (%+.1f%%): %s", row.predicted_ms, row.measured_ms,
                  100 * row.rel_error, row.genotype)
    return ValidationReport(rows, added)


def validation_genotypes(table: LatencyTable, count: int, seed: int) -> list[Genotype]:
    """``count`` random genotypes of the table's space, none of those the table was calibrated on."""
    declared = table.target.get("space")  # tables since issue 19 record the declaration; older ones a name
    space = SearchSpace(declared) if isinstance(declared, dict) else get_space(table.model.space)
    calibrated = {Genotype.from_string(s) for s in table.calibration.get("genotypes", [])}
    return sample_genotypes(space, count, np.random.default_rng(seed), exclude=calibrated)
