"""The strict checks a space declaration is read with: YAML paths, field values, one-line errors.

Shared by :mod:`search_spaces.declaration` (the top level: name, frame, defaults, stages) and
:mod:`search_spaces.stage_rules` (one stage's fields and decisions).  Every error is a
:class:`DeclarationError`: a ``ValueError`` whose message is ``<YAML path>: <rule, value and fix>``.
"""

from __future__ import annotations

from typing import Mapping

from .ops import OP_NAMES


class DeclarationError(ValueError):
    """A mistake in a space declaration: ``path`` (e.g. ``stages[2].decisions.op[1].kernel``) and the problem
    with its fix, and the ``file`` it is in (if any).  ``str()`` is one line: ``[<file>: ]<path>: <problem>``."""

    def __init__(self, path: str, problem: str, file: str | None = None) -> None:
        self.path, self.problem, self.file = path, problem, file
        where = ": ".join(str(p) for p in (file, path) if p)
        super().__init__(f"{where}: {problem}" if where else problem)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_field(path: str, name: str, value: object) -> object:
    """The value of layer field ``name`` (se as a float), or DeclarationError naming ``path`` and the rule."""
    if name == "op":
        if not isinstance(value, str) or value not in OP_NAMES:
            raise DeclarationError(path, f"unknown op {value!r}; ops: {', '.join(OP_NAMES)}")
        return value
    if name == "skip":
        if not isinstance(value, bool):
            raise DeclarationError(path, f"skip is true or false (the identity residual), got {value!r}")
        return value
    if name == "se":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise DeclarationError(path, f"se is a squeeze-excite ratio in [0, 1] (0 = none), got {value!r}")
        return float(value)
    if not is_int(value) or value < 1:
        raise DeclarationError(path, f"{name} must be a positive integer, got {value!r}")
    if name == "kernel" and value % 2 == 0:
        raise DeclarationError(path, f"kernel must be odd (3, 5, 7, ...), got {value}")
    return value


def mapping(path: str, value: object, what: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise DeclarationError(path, f"{what} must be a mapping, got {type(value).__name__} {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise DeclarationError(path, f"keys must be strings, got {key!r}")
    return value


def known_keys(path: str, value: Mapping, allowed: tuple[str, ...], hint: str = "") -> None:
    for key in value:
        if key not in allowed:
            raise DeclarationError(join(path, key), f"unknown key {key!r}; allowed: {', '.join(allowed)}{hint}")


