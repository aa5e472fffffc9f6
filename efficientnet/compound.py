"""Compound scaling: a B0..B7-like family for any genotype, and the alpha/beta/gamma grid.

Tan & Le 2019 (arXiv:1905.11946) section 3.3, equation 3: with a compound
coefficient ``phi``

    depth d = alpha ** phi,   width w = beta ** phi,   resolution r = gamma ** phi,
    subject to alpha * beta**2 * gamma**2 ~= 2 and alpha, beta, gamma >= 1,

so that every step of ``phi`` roughly doubles the FLOPs.  Step 1 of the paper
fixes ``phi = 1`` and grid-searches (alpha, beta, gamma) on the baseline
(``scale_grid``, ``select_coefficients``); step 2 fixes the triple and grows
``phi`` (``compound_family``).  The paper reports alpha = 1.2, beta = 1.1,
gamma = 1.15 for B0.

Two families, one row shape (``FamilyMember``: a name, ``phi`` and the
:class:`Coefficients` the builder and cost models already consume):

* **official** -- the hand-set table ``COEFFICIENTS`` (b0..b7, b8), exactly as
  released, so B0..B7 parameter counts are exact.
* **compound** -- the formula, with this rounding (the reference code has no
  rule for it, since it never evaluates the formula):

  - width and depth multipliers ``beta ** phi`` and ``alpha ** phi`` rounded
    to ``MULTIPLIER_DIGITS`` = 2 decimals (``1.1 ** 7 = 1.9487 -> 1.95``);
    channels then go through ``round_filters`` (multiple of 8, the 90% rule)
    and stage depths through ``round_repeats`` (ceil), as for the official
    models;
  - resolution ``base * gamma ** phi`` rounded half-up to the nearest multiple
    of ``RESOLUTION_DIVISOR`` = 4: every official resolution is a multiple of
    4 (260, 300 and 380 are not multiples of 8), and at a 32-pixel proxy
    resolution a divisor of 8 would be too coarse (32 * 1.15 = 36.8 -> 36,
    not 40);
  - dropout ``0.2 + 0.3 * phi / 7`` rounded to one decimal and capped at 0.5,
    the linear 0.2 -> 0.5 ramp that reproduces the official dropouts of
    b0..b7 exactly (0.2, 0.2, 0.3, 0.3, 0.4, 0.4, 0.5, 0.5).

Why the official table is not the formula at 1.2/1.1/1.15: the released
coefficients (tensorflow/tpu ``efficientnet_builder.efficientnet_params``) were
hand-set, not computed.  No single ``phi`` explains a row: B1 = (width 1.0,
depth 1.1, 240 px) has width ``beta ** 0`` but depth ``alpha ** 0.52`` and
resolution ``gamma ** 0.49``; B7 = (2.0, 3.1, 600) has width ``1.1 ** 7.3``,
depth ``1.2 ** 6.2`` and resolution ``1.15 ** 7.05``.  Widths and depths are
one-decimal values and resolutions round numbers; the official FLOPs grow
97x from B0 to B7 (about 2 ** 6.6), not 2 ** 7.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from search_spaces import Genotype

from .model import ModelSpec
from .scaling import COEFFICIENTS, Coefficients
from .counting import count_arch
from .stages import DEFAULT_RESOLUTION, NUM_CLASSES

#: The triple of the paper (section 4): alpha * beta**2 * gamma**2 = 1.92.
PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA = 1.2, 1.1, 1.15
#: FLOPs growth per unit of phi that the constraint aims at.
FLOPS_TARGET = 2.0
MULTIPLIER_DIGITS = 2
RESOLUTION_DIVISOR = 4
#: The official family in phi order (b8 is the Noisy Student extension; l2 has no phi).
OFFICIAL_ORDER = tuple(f"efficientnet-b{i}" for i in range(9))
DEFAULT_MAX_PHI = 7


@dataclass(frozen=True)
class CompoundCoefficients:
    """A compound-scaling triple: depth ``alpha``, width ``beta``, resolution ``gamma`` (each >= 1)."""

    alpha: float
    beta: float
    gamma: float

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 1.0:
                raise ValueError(f"{name} must be a finite number >= 1 (Tan & Le 2019, eq. 3), got {value!r}; "
                                 f"the paper's triple is alpha={PAPER_ALPHA}, beta={PAPER_BETA}, "
                                 f"gamma={PAPER_GAMMA}")

    @property
    def flops_factor(self) -> float:
        """``alpha * beta**2 * gamma**2``: the FLOPs growth per unit of phi (ideally 2)."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2

    def as_dict(self) -> dict[str, float]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma}

    def scale(self, width: float, depth: float, resolution: int) -> dict[str, float | int]:
        """A step-1 candidate (section 3.3): depth x alpha, width x beta, resolution x gamma (``round_resolution``).

        The one candidate scaler: the grid search scales the proxy network and the target model with it.
        """
        return {"width": width * self.beta, "depth": depth * self.alpha,
                "resolution": round_resolution(resolution * self.gamma)}

    def at(self, phi: int, base_resolution: int = DEFAULT_RESOLUTION,
           resolution_divisor: int = RESOLUTION_DIVISOR) -> Coefficients:
        """The width, depth, resolution and dropout at ``phi``, with the rounding of the module docstring."""
        phi = _check_phi(phi)
        _check_positive_int("base_resolution", base_resolution)
        _check_positive_int("resolution_divisor", resolution_divisor)
        return Coefficients(width=round(self.beta ** phi, MULTIPLIER_DIGITS),
                            depth=round(self.alpha ** phi, MULTIPLIER_DIGITS),
                            resolution=round_resolution(base_resolution * self.gamma ** phi, resolution_divisor),
                            dropout=compound_dropout(phi))


PAPER_COEFFICIENTS = CompoundCoefficients(PAPER_ALPHA, PAPER_BETA, PAPER_GAMMA)


@dataclass(frozen=True)
class FamilyMember:
    """One model of a family: ``name`` (``b{phi}``), ``phi`` and its coefficients."""

    name: str
    phi: int
    coefficients: Coefficients


def round_resolution(resolution: float, divisor: int = RESOLUTION_DIVISOR) -> int:
    """``resolution`` rounded half-up to the nearest multiple of ``divisor``, never below ``divisor``."""
    return max(divisor, int(math.floor(resolution / divisor + 0.5)) * divisor)


def compound_dropout(phi: int) -> float:
    """Dropout at ``phi``: the 0.2 -> 0.5 ramp of the official table, one decimal, capped at 0.5."""
    return min(0.5, round(0.2 + 0.3 * _check_phi(phi) / 7, 1))


def official_family(max_phi: int = DEFAULT_MAX_PHI) -> list[FamilyMember]:
    """The released models b0..b``max_phi`` (``max_phi`` <= 8), coefficients exactly as in ``COEFFICIENTS``."""
    _check_phi(max_phi)
    if max_phi >= len(OFFICIAL_ORDER):
        raise ValueError(f"the official family ends at b{len(OFFICIAL_ORDER) - 1}, got max phi {max_phi}; "
                         f"use max phi <= {len(OFFICIAL_ORDER) - 1} or the compound family")
    return [FamilyMember(f"b{phi}", phi, COEFFICIENTS[OFFICIAL_ORDER[phi]]) for phi in range(max_phi + 1)]


def compound_family(coefficients: CompoundCoefficients = PAPER_COEFFICIENTS, max_phi: int = DEFAULT_MAX_PHI,
                    base_resolution: int = DEFAULT_RESOLUTION,
                    resolution_divisor: int = RESOLUTION_DIVISOR) -> list[FamilyMember]:
    """Models phi = 0..``max_phi`` of equation 3 (phi = 0 is the unscaled baseline)."""
    _check_phi(max_phi)
    return [FamilyMember(f"b{phi}", phi, coefficients.at(phi, base_resolution, resolution_divisor))
            for phi in range(max_phi + 1)]


def member_spec(genotype: Genotype, member: FamilyMember | Coefficients, num_classes: int = NUM_CLASSES,
                stem_stride: int | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of ``genotype`` scaled by a family member's coefficients."""
    c = member.coefficients if isinstance(member, FamilyMember) else member
    return ModelSpec(genotype, width=c.width, depth=c.depth, resolution=c.resolution, dropout=c.dropout,
                     num_classes=num_classes, stem_stride=stem_stride)


def family_table(genotype: Genotype, members: Sequence[FamilyMember], num_classes: int = NUM_CLASSES,
                 stem_stride: int | None = None) -> list[dict[str, Any]]:
    """One row per member: name, phi, width, depth, resolution, dropout, params, macs (analytical)."""
    rows = []
    for m in members:
        spec = member_spec(genotype, m, num_classes, stem_stride)
        params, macs = count_arch(spec.arch(), spec.resolution, spec.num_classes)
        c = m.coefficients
        rows.append({"name": m.name, "phi": m.phi, "width": c.width, "depth": c.depth,
                     "resolution": c.resolution, "dropout": c.dropout, "params": params, "macs": macs})
    return rows


# --- step 1: the grid at phi = 1 ---------------------------------------------------------------------

#: The default axis of the step-1 grid: 1.0, 1.05, ..., 1.5 (the paper's triple 1.2/1.1/1.15 is on it).
GRID_LOW, GRID_HIGH, GRID_STEP = 1.0, 1.5, 0.05


def grid_values(low: float = GRID_LOW, high: float = GRID_HIGH, step: float = GRID_STEP) -> tuple[float, ...]:
    """``low, low + step, ..., high`` (inclusive), each rounded to 6 decimals so 1.15 is 1.15."""
    for name, value in (("low", low), ("high", high), ("step", step)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"grid {name} must be a finite number, got {value!r}")
    if not step > 0:
        raise ValueError(f"grid step must be > 0, got {step!r}")
    if low > high:
        raise ValueError(f"grid low <= high must hold, but got (low={low}, high={high})")
    count = int(math.floor((high - low) / step + 1e-9)) + 1
    return tuple(round(low + i * step, 6) for i in range(count))


def scale_grid(alphas: Iterable[float], betas: Iterable[float], gammas: Iterable[float],
               tolerance: float = 0.1, target: float = FLOPS_TARGET) -> list[CompoundCoefficients]:
    """Every triple of the grid with ``|alpha * beta**2 * gamma**2 - target| <= tolerance``.

    Values below 1 are rejected (the paper requires alpha, beta, gamma >= 1).  The
    result is sorted by (alpha, beta, gamma) and has no duplicates; an empty result
    is an error that names the closest factor the grid reaches.
    """
    if not isinstance(tolerance, (int, float)) or not math.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    axes = {"alphas": sorted(set(alphas)), "betas": sorted(set(betas)), "gammas": sorted(set(gammas))}
    for name, values in axes.items():
        if not values:
            raise ValueError(f"grid {name} is empty; give at least one value >= 1")
    out, closest = [], None
    for a in axes["alphas"]:
        for b in axes["betas"]:
            for g in axes["gammas"]:
                triple = CompoundCoefficients(a, b, g)
                gap = abs(triple.flops_factor - target)
                if closest is None or gap < closest[0]:
                    closest = (gap, triple)
                if gap <= tolerance + 1e-12:
                    out.append(triple)
    if not out:
        gap, triple = closest
        raise ValueError(f"no (alpha, beta, gamma) on the grid has alpha*beta^2*gamma^2 within {tolerance} of "
                         f"{target}; closest is {triple.as_dict()} with {triple.flops_factor:.4f}: widen the grid "
                         "or raise the tolerance")
    return out


def grid_candidate(genotype: Genotype, coefficients: CompoundCoefficients, base_resolution: int = DEFAULT_RESOLUTION,
                   num_classes: int = NUM_CLASSES, stem_stride: int | None = None,
                   resolution_divisor: int = RESOLUTION_DIVISOR) -> ModelSpec:
    """The phi = 1 model of step 1: ``genotype`` at depth alpha, width beta, resolution gamma * base."""
    return member_spec(genotype, coefficients.at(1, base_resolution, resolution_divisor), num_classes, stem_stride)


@dataclass(frozen=True)
class GridChoice:
    """The winner of step 1: its triple, its trial result and the family (step 2) it implies."""

    coefficients: CompoundCoefficients
    result: Mapping[str, Any]
    family: list[FamilyMember]


def select_coefficients(results: Iterable[Mapping[str, Any]], metric: str = "accuracy",
                        max_phi: int = DEFAULT_MAX_PHI, base_resolution: int = DEFAULT_RESOLUTION,
                        resolution_divisor: int = RESOLUTION_DIVISOR) -> GridChoice:
    """Pick the best triple from grid-trial results and return the family it implies.

    Each result is a mapping with ``alpha``, ``beta``, ``gamma`` and ``metric``
    (higher is better); ``macs`` is optional.  Results whose metric is missing,
    None or not finite (failed trials) are skipped.  Ties go to fewer MACs, then to
    the factor closest to 2, then to the smallest (alpha, beta, gamma), so the
    choice never depends on the order results arrive in.
    """
    best_key, best = None, None
    for result in results:
        missing = [k for k in ("alpha", "beta", "gamma") if k not in result]
        if missing:
            raise ValueError(f"grid result {dict(result)!r} lacks {', '.join(missing)}; each result needs "
                             "alpha, beta, gamma and the metric")
        score = result.get(metric)
        if score is None or not isinstance(score, (int, float)) or not math.isfinite(score):
            continue
        triple = CompoundCoefficients(float(result["alpha"]), float(result["beta"]), float(result["gamma"]))
        macs = result.get("macs")
        macs = macs if isinstance(macs, (int, float)) and math.isfinite(macs) else math.inf
        key = (-score, macs, abs(triple.flops_factor - FLOPS_TARGET), triple.alpha, triple.beta, triple.gamma)
        if best_key is None or key < best_key:
            best_key, best = key, (triple, result)
    if best is None:
        raise ValueError(f"no grid result has a finite {metric!r}: every trial failed or the metric name is wrong")
    triple, result = best
    return GridChoice(triple, result, compound_family(triple, max_phi, base_resolution, resolution_divisor))


def _check_phi(phi: int) -> int:
    if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
        raise ValueError(f"phi must be an integer >= 0, got {phi!r}")
    return phi


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
