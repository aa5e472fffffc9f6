"""The MnasNet / EfficientNet multi-objective reward.

Tan et al. 2019 (MnasNet, arXiv:1807.11626) eq. 2:
``reward = ACC * (cost / T) ** w`` with ``w = alpha`` if ``cost <= T`` else
``beta``.  The soft form (EfficientNet's setting, arXiv:1905.11946 section 4)
uses ``alpha = beta = w = -0.07`` with ``T`` = 400M multiply-adds; the hard
form uses ``alpha = 0, beta = -1``: no reward for being under the target, a
steep penalty above it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ObjectiveConfig:
    """Reward settings.  ``cost``: what ``target`` is measured in (macs, params, latency in ms)."""

    cost: Literal["macs", "params", "latency"] = "macs"
    target: float = 400e6
    w: float = -0.07
    form: Literal["soft", "hard"] = "soft"
    #: Latency lookup table (JSON written by ``nas profile``), used when ``cost`` is ``latency``.
    latency_table: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.target, (int, float)) and self.target > 0 and math.isfinite(self.target)):
            raise ValueError(f"objective.target (T) must be > 0, got {self.target!r}; e.g. 400e6 MACs or 20 ms")
        if not isinstance(self.w, (int, float)) or not math.isfinite(self.w) or self.w > 0:
            raise ValueError(f"objective.w must be <= 0 (a positive w rewards bigger models), got {self.w!r}; "
                             "the paper uses -0.07")
        if self.cost == "latency" and not self.latency_table:
            raise ValueError("objective.latency_table is required when objective.cost is 'latency'; "
                             "make one with `nas profile --target cpu --out lut.json`")
        if self.form not in ("soft", "hard"):
            raise ValueError(f"objective.form must be 'soft' or 'hard', got {self.form!r}")

    @property
    def exponents(self) -> tuple[float, float]:
        """(alpha, beta): the exponent under and over the target."""
        return (self.w, self.w) if self.form == "soft" else (0.0, -1.0)


def reward(accuracy: float, cost: float, config: ObjectiveConfig = ObjectiveConfig()) -> float:
    """``ACC * (cost / T) ** w`` (MnasNet eq. 2); inputs validated."""
    if not isinstance(accuracy, (int, float)) or not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}")
    if not isinstance(cost, (int, float)) or not cost > 0 or not math.isfinite(cost):
        raise ValueError(f"cost must be a positive finite number, got {cost!r}")
    alpha, beta = config.exponents
    exponent = alpha if cost <= config.target else beta
    return float(accuracy) * (cost / config.target) ** exponent
