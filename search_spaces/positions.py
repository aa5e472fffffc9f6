"""Positions of a declared space: what one genotype block may be (its fixed fields and its decisions).

A :class:`~search_spaces.space.SearchSpace` is a tuple of :class:`Position`, one per genotype
block.  A position has the block's ``stride``, the ``fixed`` values of the layer fields no decision
sets, and its :class:`Decision` s in encode order.  A decision has a ``name``, the ``fields`` it sets
and its ``options``: each option is a complete mapping over those fields (a field an option leaves
out has the value its op pins, else the declaration's default), so an option can tie several fields
(MnasNet's ConvOp ``{op: mbconv, expand: 6}``, NAS-Bench-Macro's ``{op: mbconv, expand: 6, kernel: 5}``).

Every layer of a genotype block at a position is ``BlockGene(**combo)`` for one of
:meth:`Position.combos`; the controllers' integer decisions are the option indices.  Consumers that
need to know what a position allows (the supernet's shared weights, the latency-table builder) ask
:meth:`Position.values`, e.g. ``position.values("expand", op="mbconv")``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

#: The fields of a layer a declaration can fix or decide, in the order options are written.
LAYER_FIELDS = ("op", "kernel", "expand", "se", "skip", "filters", "layers")


def show(value: object) -> str:
    """A value as YAML writes it (``true``, ``0.25``, ``mbconv``)."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def show_option(option: Mapping[str, object], fields: tuple[str, ...] | None = None) -> str:
    """``{op: mbconv, expand: 6}`` -- the option as a YAML flow mapping (only ``fields`` if given)."""
    keys = fields if fields is not None else tuple(option)
    return "{" + ", ".join(f"{k}: {show(option[k])}" for k in keys) + "}"


@dataclass(frozen=True)
class Decision:
    """One named decision of a position: the fields it sets and its options (complete over ``fields``)."""

    name: str
    fields: tuple[str, ...]
    options: tuple[Mapping[str, object], ...]
    path: str = ""  # where the declaration writes it, e.g. ``stages[2].decisions.op``
    _index: Mapping[tuple, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        options = tuple(MappingProxyType(dict(o)) for o in self.options)
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "_index", {tuple(o[f] for f in self.fields): i for i, o in enumerate(options)})

    def __reduce__(self):  # read-only mappings do not pickle; rebuild from plain dicts (Ray copies spaces)
        return Decision, (self.name, self.fields, tuple(dict(o) for o in self.options), self.path)

    def __len__(self) -> int:
        return len(self.options)

    def index_of(self, values: Mapping[str, object] | object) -> int | None:
        """The option index whose fields equal ``values`` (a mapping or an object with the fields), or None."""
        get = values.__getitem__ if isinstance(values, Mapping) else values.__getattribute__
        return self._index.get(tuple(get(f) for f in self.fields))

    def varying(self) -> tuple[str, ...]:
        """The fields whose value differs between options (what the decision really chooses)."""
        return tuple(f for f in self.fields if len({o[f] for o in self.options}) > 1) or self.fields


@dataclass(frozen=True)
class Position:
    """One genotype block of a space: its place, its stride, fixed fields and decisions.

    ``index`` is the 0-based genotype block, ``stage`` the 0-based stage of the declaration it
    comes from, ``layer`` its layer in a ``per: layer`` stage (None in a ``per: stage`` stage).
    """

    index: int
    stage: int
    layer: int | None
    stride: int
    fixed: Mapping[str, object]
    decisions: tuple[Decision, ...]
    _combos: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", MappingProxyType(dict(self.fixed)))
        object.__setattr__(self, "decisions", tuple(self.decisions))
        object.__setattr__(self, "_combos", [])

    def __reduce__(self):
        return Position, (self.index, self.stage, self.layer, self.stride, dict(self.fixed), self.decisions)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Options per decision, in encode order."""
        return tuple(len(d) for d in self.decisions)

    @property
    def size(self) -> int:
        """How many different blocks the position allows."""
        return math.prod(self.sizes)

    def decision(self, name: str) -> Decision:
        for d in self.decisions:
            if d.name == name:
                return d
        raise KeyError(f"position {self.index + 1} has no decision {name!r}; "
                       f"decisions: {', '.join(d.name for d in self.decisions) or 'none'}")

    def block_fields(self, choice: tuple[int, ...] | list[int]) -> dict[str, object]:
        """The complete ``BlockGene`` keyword arguments of option indices ``choice`` (one per decision)."""
        out: dict[str, object] = dict(self.fixed)
        for d, i in zip(self.decisions, choice):
            out.update(d.options[i])
        out["stride"] = self.stride
        return out

    def combos(self) -> list[dict[str, object]]:
        """Every block the position allows, as complete ``BlockGene`` keyword dicts (``stride`` included),
        in encode order (the last decision varies fastest)."""
        if not self._combos:
            self._combos.extend(self.block_fields(c) for c in itertools.product(*(range(n) for n in self.sizes)))
        return [dict(c) for c in self._combos]

    def values(self, field_name: str, **where: object) -> tuple:
        """Every value ``field_name`` can take here (first-seen order), optionally only among the blocks
        where the ``where`` fields have the given values, e.g. ``values("expand", op="mbconv")``."""
        known = LAYER_FIELDS + ("stride",)
        for name in (field_name, *where):
            if name not in known:
                raise ValueError(f"unknown layer field {name!r}; fields: {', '.join(known)}")
        if field_name in self.fixed and not where:
            return (self.fixed[field_name],)
        self.combos()
        seen: dict[object, None] = {}
        for combo in self._combos:
            if all(combo[k] == v for k, v in where.items()):
                seen.setdefault(combo[field_name], None)
        return tuple(seen)
