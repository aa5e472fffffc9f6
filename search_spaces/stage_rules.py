"""One stage of a declaration -> its positions: which decision owns which field, what the ops pin.

The rules (README, "Declare your own space"):

1. A layer field is set by at most one decision, and a field a decision sets is not also fixed
   by the stage (defaults are only defaults: anything overrides them).
2. An op's pinned fields (:data:`search_spaces.ops.OPS`: ``conv`` and ``irpw`` expand 1, ``nodw``
   se 0, ``skip`` kernel 1, expand 1, se 0, skip true) are filled in for the options with that op.
   Setting a pinned field to another value -- in the same option, through another decision, or
   as the stage's fixed value -- is an error naming the option and the fix (tie the field into the
   op's decision).  So every combination of options is a valid block: nothing is dropped or
   changed silently while searching.
3. Options are completed over their decision's fields (a field an option leaves out has its op's
   pinned value, else the default); two options that complete equal are an error.
4. ``per: stage`` gives one position of ``layers`` identical layers; ``per: layer`` gives
   ``layers`` positions of one layer each (the first with the stage's stride), each with its own
   copy of the decisions, so ``layers`` cannot be a decision there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from .checks import DeclarationError, check_field, join, mapping
from .genes import BlockGene
from .ops import OPS
from .positions import LAYER_FIELDS, Decision, Position, show, show_option

PER = ("stage", "layer")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class _Raw:
    """A decision as written: its name, YAML path, explicit option values, and whether options were scalars."""

    name: str
    path: str
    options: list[dict[str, object]]
    scalar: bool

    def option_path(self, j: int, field: str | None = None) -> str:
        path = join(self.path, j)
        return path if field is None or self.scalar else join(path, field)

    @property
    def fields(self) -> set[str]:
        return set().union(*self.options)


def _per_layer_layers(path: str, stage_path: str) -> DeclarationError:
    return DeclarationError(path, f"a 'per: layer' stage has one layer per genotype block, so layers cannot be "
                                  f"decided per layer; give the count as {stage_path}.layers: N, or use per: stage")


def _read_decisions(path: str, stage_path: str, raw: object, per: str) -> list[_Raw]:
    out: list[_Raw] = []
    for name, options in mapping(path, raw, "decisions").items():
        dpath = join(path, name)
        if not _NAME.match(name):
            raise DeclarationError(dpath, f"a decision name is a lowercase word (letters, digits, _), got {name!r}")
        if not isinstance(options, list):
            raise DeclarationError(dpath, f"options must be a list, e.g. {name}: [3, 5] or "
                                          f"{name}: [{{op: mbconv, expand: 6}}], got {type(options).__name__}")
        if not options:
            raise DeclarationError(dpath, "an empty option list; give at least one option (one option fixes it)")
        is_map = [isinstance(o, Mapping) for o in options]
        if len(set(is_map)) > 1:
            j = is_map.index(not is_map[0])
            raise DeclarationError(join(dpath, j), "mixes scalar options and mappings in one decision; write every "
                                                   "option as a mapping, e.g. {kernel: 3}")
        if is_map[0]:
            opts = []
            for j, option in enumerate(options):
                opath = join(dpath, j)
                if not mapping(opath, option, "an option"):
                    raise DeclarationError(opath, "an empty option; set at least one field, e.g. {op: skip}")
                values = {}
                for key, value in option.items():
                    if key == "stride":
                        raise DeclarationError(join(opath, key), f"stride is the stage's ({stage_path}.stride), "
                                                                 "not a decision's")
                    if key not in LAYER_FIELDS:
                        raise DeclarationError(join(opath, key), f"unknown key {key!r}; an option sets layer "
                                                                 f"fields: {', '.join(LAYER_FIELDS)}")
                    if key == "layers" and per == "layer":
                        raise _per_layer_layers(join(opath, key), stage_path)
                    values[key] = check_field(join(opath, key), key, value)
                opts.append(values)
            out.append(_Raw(name, dpath, opts, scalar=False))
            continue
        if name == "stride":
            raise DeclarationError(dpath, f"stride is the stage's ({stage_path}.stride), not a decision")
        if name not in LAYER_FIELDS:
            raise DeclarationError(dpath, f"decision {name!r} has scalar options, so its name must be the field it "
                                          f"sets ({', '.join(LAYER_FIELDS)}); or write its options as mappings, "
                                          f"e.g. {name}: [{{op: mbconv, expand: 6}}]")
        if name == "layers" and per == "layer":
            raise _per_layer_layers(dpath, stage_path)
        out.append(_Raw(name, dpath, [{name: check_field(join(dpath, j), name, o)} for j, o in enumerate(options)],
                        scalar=True))
    return out


def _owners(path: str, fixed_here: Mapping, decisions: list[_Raw]) -> dict[str, int]:
    """Rule 1: field -> the index of the decision that sets it."""
    owner: dict[str, int] = {}
    for i, d in enumerate(decisions):
        for f in (f for f in LAYER_FIELDS if f in d.fields):
            if f in owner:
                other = decisions[owner[f]]
                tie = next((g for g in LAYER_FIELDS if g != f and g in other.fields | d.fields), "op")
                raise DeclarationError(d.path, f"field {f} is also set by decision {other.name!r} ({other.path}); a "
                                               f"field belongs to one decision: tie them into one decision whose "
                                               f"options set both, e.g. [{{{tie}: ..., {f}: ...}}, ...]")
            if f in fixed_here:
                raise DeclarationError(d.path, f"field {f} is also fixed by {join(path, f)}; remove one of the two")
            owner[f] = i
    return owner


def _pins(path: str, fixed_here: dict, base: dict, decisions: list[_Raw], owner: dict[str, int],
          defaults_op: bool) -> set[str]:
    """Rule 2: check every pin; fill the pins of a fixed op into ``base``; return the fields the op decision
    gains from its options' pins."""
    gained: set[str] = set()
    if "op" not in owner:
        op = base["op"]
        where = "defaults.op" if defaults_op else join(path, "op")
        for f, pin in OPS[op].pinned.items():
            if f in owner:
                d = decisions[owner[f]]
                for k, option in enumerate(d.options):
                    if f in option and option[f] != pin:
                        raise DeclarationError(d.option_path(k, f), f"op {op} ({where}) has {f} fixed at {show(pin)}; "
                                                                    "remove this option")
            elif f in fixed_here and fixed_here[f] != pin:
                raise DeclarationError(join(path, f), f"op {op} ({where}) has {f} fixed at {show(pin)}, got "
                                                      f"{show(fixed_here[f])}; remove {join(path, f)}")
            else:
                base[f] = pin
        return gained
    x = owner["op"]
    d = decisions[x]
    for j, option in enumerate(d.options):
        op = option.get("op", base["op"])
        for f, pin in OPS[op].pinned.items():
            if f in option:
                try:
                    OPS[op].check({f: option[f]})
                except ValueError as err:
                    raise DeclarationError(d.option_path(j, f), f"{err}; drop {f} from this option") from None
            elif f in owner and owner[f] != x:
                other = decisions[owner[f]]
                if any(o[f] != pin for o in other.options):
                    raise DeclarationError(d.option_path(j), f"op {op} has {f} fixed at {show(pin)}, but decision "
                                                             f"{other.name!r} ({other.path}) sets {f} for every op; "
                                                             f"tie {f} into the options of {d.path} (e.g. {{op: {op}}}"
                                                             f", {{op: mbconv, {f}: ...}}) and drop decision "
                                                             f"{other.name!r}")
            elif f in fixed_here:
                if fixed_here[f] != pin:
                    raise DeclarationError(d.option_path(j), f"op {op} has {f} fixed at {show(pin)}, but "
                                                             f"{join(path, f)} fixes it at {show(fixed_here[f])}; "
                                                             f"move {f} into the options of {d.path} or into defaults")
            elif f not in owner:
                gained.add(f)
    return gained


def _complete(d: _Raw, extra: set[str], base: dict) -> Decision:
    """Rule 3: options completed over the decision's fields; duplicates refused."""
    names = d.fields | extra
    ordered = tuple(f for f in LAYER_FIELDS if f in names)
    complete: list[dict[str, object]] = []
    seen: dict[tuple, int] = {}
    for j, option in enumerate(d.options):
        op = option.get("op", base["op"]) if "op" in names else None
        full: dict[str, object] = {}
        for f in ordered:
            if f in option:
                full[f] = option[f]
            elif op is not None and f in OPS[op].pinned:
                full[f] = OPS[op].pinned[f]
            elif base.get(f) is not None:
                full[f] = base[f]
            else:
                raise DeclarationError(d.option_path(j), f"the option sets no {f} and there is no default; add {f}")
        key = tuple(full.values())
        if key in seen:
            how = "" if d.options[seen[key]] == option else \
                " once the op's pinned fields and the defaults are filled in"
            raise DeclarationError(d.option_path(j), f"repeats option {seen[key]} ({show_option(full)}){how}; "
                                                     "remove one")
        seen[key] = j
        complete.append(full)
    return Decision(d.name, ordered, tuple(complete), d.path)


def stage_positions(path: str, stage_index: int, stage: Mapping, defaults: Mapping, start: int) -> list[Position]:
    """The positions of stage ``stage_index`` (at YAML ``path``); ``start``: the index of its first block."""
    if "stride" not in stage:
        raise DeclarationError(path, "a stage needs a stride, e.g. stride: 2 (1 keeps the feature-map size)")
    stride = check_field(join(path, "stride"), "stride", stage["stride"])
    per = stage.get("per", PER[0])
    if per not in PER:
        raise DeclarationError(join(path, "per"), f"per is 'stage' (one decision set for `layers` identical layers) "
                                                  f"or 'layer' (each layer its own decisions), got {per!r}")
    fixed_here = {f: check_field(join(path, f), f, stage[f]) for f in LAYER_FIELDS if f in stage}
    decisions = _read_decisions(join(path, "decisions"), path, stage.get("decisions", {}), per)
    owner = _owners(path, fixed_here, decisions)
    base = {f: fixed_here.get(f, defaults.get(f)) for f in LAYER_FIELDS}
    gained = _pins(path, fixed_here, base, decisions, owner, defaults_op="op" not in fixed_here)
    resolved = [_complete(d, gained if owner.get("op") == i else set(), base) for i, d in enumerate(decisions)]
    owned = set(owner) | gained
    count = base["layers"]
    if per == "layer":
        base["layers"] = 1
    fixed = {f: base[f] for f in LAYER_FIELDS if f not in owned}
    if fixed.get("filters", 0) is None:
        raise DeclarationError(path, "the stage has no filters; fix them (filters: 24) or decide them "
                                     "(decisions: {filters: [16, 24, 32]})")
    first = [d.options[0] for d in resolved]
    for i, d in enumerate(resolved):  # every option builds a block (the rules above should make this hold)
        for j, option in enumerate(d.options):
            values = dict(fixed)
            for other in first:
                values.update(other)
            values.update(option)
            try:
                BlockGene(stride=stride, **values)  # type: ignore[arg-type]
            except ValueError as err:
                raise DeclarationError(decisions[i].option_path(j), str(err)) from None
    if per == "stage":
        return [Position(start, stage_index, None, stride, fixed, tuple(resolved))]
    return [Position(start + k, stage_index, k, stride if k == 0 else 1, fixed, tuple(resolved))
            for k in range(int(count))]  # type: ignore[call-overload]
