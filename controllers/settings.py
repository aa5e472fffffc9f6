"""Settings every controller shares, and the checks the Settings dataclasses use.

Each controller's ``settings_cls`` is a frozen dataclass deriving from
:class:`ProposalSettings` (keyword-only fields, so a subclass keeps its own
positional order); its ``__post_init__`` calls ``super().__post_init__()``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ProposalSettings:
    """Settings every controller has (the base of each ``settings_cls``; keyword-only).

    ``allow_repeats``: propose genotypes already evaluated or pending (default no: a repeat
    costs a full trial and, with a deterministic evaluator, tells nothing new).
    ``resample_tries``: how many times a repeated proposal is redrawn, and how many mutation
    steps then look for an unseen neighbour, before a repeat is accepted.
    """

    allow_repeats: bool = False
    resample_tries: int = 100

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if not isinstance(self.allow_repeats, bool):
            raise ValueError(f"{owner}.allow_repeats must be true or false, got {self.allow_repeats!r}")
        check_int(owner, "resample_tries", self.resample_tries, 1)


def check_int(owner: str, field: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}.{field} must be an integer >= {low}, got {value!r}")


def check_float(owner: str, field: str, value: object, low: float, high: float,
                low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{owner}.{field} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
