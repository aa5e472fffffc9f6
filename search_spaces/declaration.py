"""Reading a space declaration strictly: a YAML file or mapping -> frame + positions.

A declaration (README, "Declare your own space")::

    name: my-space                       # required
    source: "..."                        # optional text (also `description`)
    frame: {stem: 32, stem_stride: 2, stem_scaling: scaled, head: 1280, head_scaling: scaled,
            activation: silu, se_activation: null}          # every key optional; defaults = Frame()
    defaults: {op: mbconv, kernel: 3, expand: 1, se: 0.0, skip: true, layers: 1}   # optional
    stages:
      - stride: 2                        # required
        filters: 24                      # any layer field may be fixed here ...
        per: stage                       # stage (default): `layers` identical layers, one decision set;
                                         # layer: `layers` genotype blocks of one layer, each its own decisions
        decisions:                       # ... or decided: name -> options, in encode order
          op: [{op: mbconv, expand: 3}, {op: mbconv, expand: 6}]   # mappings tie fields
          kernel: [3, 5]                                           # scalars: the name is the field

The layer fields are ``op kernel expand se skip filters layers`` (:data:`LAYER_FIELDS`).  A field
is set by at most one of: a decision, the stage, the defaults (then the built-in ``BlockGene``
defaults).  The op facts (:mod:`search_spaces.ops`) pin fields: an option whose op pins a field
takes the pinned value (``{op: skip}`` has kernel 1, expand 1, se 0, skip true) -- unless the
option, another decision or the stage sets that field to another value, which is an error.

Every mistake raises :class:`DeclarationError` (a ``ValueError``) naming the YAML path and the fix
in one line.  The resolution of decisions into positions is :mod:`search_spaces.stage_rules`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, fields
from typing import Mapping

from .checks import DeclarationError, check_field, is_int, join, known_keys, mapping
from .genes import ACTIVATIONS, HEAD_SCALINGS, STEM_SCALINGS, BlockGene, Frame
from .positions import LAYER_FIELDS, Position
from .stage_rules import stage_positions

#: The built-in layer defaults: BlockGene's own (filters has none: every stage must give it).
BUILTIN_DEFAULTS = {f.name: f.default for f in fields(BlockGene) if f.name not in ("stride", "filters")}
TOP_KEYS = ("name", "source", "description", "frame", "defaults", "stages")
STAGE_KEYS = ("stride", "per", "decisions") + LAYER_FIELDS
_SPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Parsed:
    """What a declaration says: its name, texts, frame and positions (one per genotype block)."""

    name: str
    source: str
    description: str
    frame: Frame
    positions: tuple[Position, ...]


def _frame(raw: object) -> Frame:
    names = tuple(f.name for f in fields(Frame))
    if raw is None:
        return Frame()
    raw = mapping("frame", raw, "frame")
    known_keys("frame", raw, names)
    choices = {"stem_scaling": STEM_SCALINGS, "head_scaling": HEAD_SCALINGS, "activation": ACTIVATIONS,
               "se_activation": ACTIVATIONS, "stem_stride": (1, 2)}
    for key, value in raw.items():
        if key in ("stem", "head") and (not is_int(value) or value < 1):
            raise DeclarationError(f"frame.{key}", f"{key} width must be a positive integer, got {value!r}")
        if key in choices and value not in choices[key] and not (key == "se_activation" and value is None):
            extra = " (or null: the same as activation)" if key == "se_activation" else ""
            raise DeclarationError(f"frame.{key}", f"{value!r} is not allowed; use one of "
                                                   f"{', '.join(map(str, choices[key]))}{extra}")
        if key == "stem_stride" and isinstance(value, bool):
            raise DeclarationError("frame.stem_stride", f"stem_stride is 1 or 2, got {value!r}")
    return Frame(**raw)


def _defaults(raw: object) -> dict[str, object]:
    out = dict(BUILTIN_DEFAULTS)
    if raw is None:
        return out
    raw = mapping("defaults", raw, "defaults")
    known_keys("defaults", raw, LAYER_FIELDS)
    for key, value in raw.items():
        out[key] = check_field(join("defaults", key), key, value)
    return out


def _text(raw: Mapping, key: str) -> str:
    value = raw.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DeclarationError(key, f"{key} is free text, got {type(value).__name__}; quote it")
    return value


def parse(raw: object) -> Parsed:
    """Check a declaration mapping strictly and resolve it into positions."""
    raw = mapping("", raw, "a space declaration")
    known_keys("", raw, TOP_KEYS)
    name = raw.get("name")
    if name is None:
        raise DeclarationError("name", "a space needs a name, e.g. name: my-space")
    if not isinstance(name, str) or not _SPACE_NAME.match(name):
        raise DeclarationError("name", f"name must be a word of letters, digits, '-', '_' or '.', got {name!r}")
    frame = _frame(raw.get("frame"))
    defaults = _defaults(raw.get("defaults"))
    stages = raw.get("stages")
    if stages is None or (isinstance(stages, list) and not stages):
        raise DeclarationError("stages", "a space needs at least one stage, e.g. stages: [{stride: 1, filters: 16}]")
    if not isinstance(stages, list):
        raise DeclarationError("stages", f"stages must be a list of stage mappings, got {type(stages).__name__}")
    positions: list[Position] = []
    for s, stage in enumerate(stages):
        path = join("stages", s)
        stage = mapping(path, stage, "a stage")
        known_keys(path, stage, STAGE_KEYS, " (a layer field, stride, per or decisions)")
        positions.extend(stage_positions(path, s, stage, defaults, len(positions)))
    return Parsed(name, _text(raw, "source"), _text(raw, "description"), frame, tuple(positions))


def plain(raw: object, path: str = "") -> object:
    """A JSON-able deep copy of a declaration (tuples become lists); DeclarationError on anything else."""
    if isinstance(raw, Mapping):
        return {str(k): plain(v, join(path, str(k))) for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        return [plain(v, join(path, i)) for i, v in enumerate(raw)]
    if raw is None or isinstance(raw, (str, bool, int, float)):
        return copy.copy(raw)
    raise DeclarationError(path, f"{type(raw).__name__} {raw!r} is not a YAML scalar, list or mapping")


__all__ = ["BUILTIN_DEFAULTS", "DeclarationError", "Parsed", "parse", "plain"]
