"""Latency as a cost model: the MnasNet objective's ``LAT(m)`` in milliseconds.

MnasNet (arXiv:1807.11626, eq. 2) scores ``ACC(m) * (LAT(m) / T) ** w`` with
latency measured on the target phone.  :class:`LatencyCost` implements the
cost interface of ``nas.cost.base`` (``name``, ``unit``, ``cost(genotype)``), so an
experiment picks it with ``objective: {cost: latency, target: <T in ms>,
latency_table: lut.json}`` exactly as it picks MACs; the soft and hard forms
are the objective's (``nas.cost.objective``), not this module's.

Two modes: ``predicted`` (default) sums the table's per-layer entries and
applies its calibration -- microseconds per candidate, noise-free;
``measured`` builds each candidate's target model and times it end to end on
the table's target (seconds per candidate, as noisy as the machine).
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Literal

from search_spaces import Genotype

from ..target import TargetModel
from .build import measure_genotype, measure_layers
from .lut import LatencyTable, MissingLayerError, model_layers

log = logging.getLogger(__name__)


class LatencyCost:
    """Latency (ms) of a genotype's target model, from a latency table made by ``nas profile``.

    ``measure_missing``: a layer the table lacks is measured on this machine,
    added, and (when the table came from a file) the file is rewritten; off, a
    missing layer raises :class:`MissingLayerError` naming it and the fix.
    """

    name = "latency"
    unit = "ms"

    def __init__(self, table: LatencyTable, target: TargetModel | None = None, *, measure_missing: bool = False,
                 mode: Literal["predicted", "measured"] = "predicted", path: str | Path | None = None) -> None:
        if mode not in ("predicted", "measured"):
            raise ValueError(f"latency mode must be 'predicted' or 'measured', got {mode!r}")
        self.target = target or table.model.target()
        where = f"latency table {str(path)!r}" if path else "latency table"
        table.check_target(self.target, where)
        self.table = table
        self.measure_missing = measure_missing
        self.mode = mode
        self.path = Path(path) if path else None
        self._cache: dict[Genotype, float] = {}
        if measure_missing or mode == "measured":
            self._check_host(where)

    @classmethod
    def from_table(cls, path: str | Path, target: TargetModel | None = None, *, measure_missing: bool = False,
                   mode: Literal["predicted", "measured"] = "predicted") -> "LatencyCost":
        """The cost of the table at ``path``; its model must match ``target`` (resolution, width, depth, classes)."""
        if path is None:
            raise ValueError("a latency cost needs a latency table: set objective.latency_table to a file made by "
                             "`nas profile --target cpu --out lut.json`")
        return cls(LatencyTable.load(path), target, measure_missing=measure_missing, mode=mode, path=path)

    def _check_host(self, where: str) -> None:
        host = self.table.target.get("host")
        if host and host != platform.node():
            log.warning("%s was measured on host %r; measuring here (%r) mixes two machines in one table",
                        where, host, platform.node())

    def cost(self, genotype: Genotype) -> float:
        """Latency of ``genotype``'s target model in milliseconds."""
        cached = self._cache.get(genotype)
        if cached is not None:
            return cached
        if self.mode == "measured":
            settings = self.table.settings
            value = measure_genotype(genotype, self.target, settings).value(settings.statistic)
        else:
            value = self._predict(genotype)
        self._cache[genotype] = value
        return value

    def _predict(self, genotype: Genotype) -> float:
        layers = model_layers(genotype, self.target)
        try:
            return self.table.calibrated(self.table.layer_sum(layers))
        except MissingLayerError as err:
            if not self.measure_missing:
                if self.path is None:
                    raise
                raise MissingLayerError(str(err).replace("latency table", f"latency table {str(self.path)!r}", 1)) \
                    from None
        added = measure_layers(self.table, layers)
        log.info("measured %d layers missing from the latency table", added)
        if self.path is not None:
            self.table.save(self.path)
        return self.table.calibrated(self.table.layer_sum(layers))
