"""Finding spaces: shipped declarations by name, YAML files by path, mappings by value.

The shipped declarations are the YAML files of ``search_spaces/declarations/`` (package data);
each file's ``name`` is its file name.  ``load_space(value, base_dir=None)`` takes a shipped name,
a path to a YAML file (relative paths against ``base_dir``), a declaration mapping, or a
:class:`SearchSpace`.  Nothing shipped needs ``register_space``: it stays for spaces defined in a
user's code (which exist only in the process that registered them -- a space that must reach Ray
workers travels as ``space.to_declaration()``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

import yaml

from .checks import DeclarationError
from .space import SearchSpace

DECLARATIONS = Path(__file__).resolve().parent / "declarations"
_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def shipped_spaces() -> list[str]:
    """Names of the shipped declarations."""
    return sorted(p.stem for p in DECLARATIONS.glob("*.yaml"))


@lru_cache(maxsize=None)
def _shipped(name: str) -> dict:
    return read_declaration(DECLARATIONS / f"{name}.yaml")


def read_declaration(path: str | Path) -> dict:
    """The declaration mapping of a YAML file (plain ``yaml.safe_load``: anchors and merge keys work)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"space file {path} does not exist; give a YAML declaration file or a shipped space "
                         f"({', '.join(list_spaces())})") from None
    except OSError as err:
        raise ValueError(f"space file {path} cannot be read ({err.strerror}); check the path and its "
                         "permissions") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"space file {path}:{where}: not valid YAML ({problem}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise ValueError(f"space file {path}: a space declaration is a YAML mapping (name:, frame:, stages: ...), "
                         f"got {type(raw).__name__}")
    return raw


def register_space(name: str, factory: Callable[[], SearchSpace]) -> None:
    """Register a code-defined space under ``name``; a duplicate (or shipped) name raises."""
    if name in _SPACES or name in shipped_spaces():
        raise ValueError(f"search space {name!r} is already registered")
    _SPACES[name] = factory


def get_space(name: str) -> SearchSpace:
    """A fresh space by name (shipped, or registered in this process); an unknown name lists the known ones."""
    if name in _SPACES:
        return _SPACES[name]()
    if isinstance(name, str) and name in shipped_spaces():
        return SearchSpace(_shipped(name))
    raise ValueError(f"unknown search space {name!r}; known: {', '.join(list_spaces())} (or a path to a YAML "
                     "declaration)")


def list_spaces() -> list[str]:
    return sorted(set(shipped_spaces()) | set(_SPACES))


def load_space(value: str | Path | Mapping | SearchSpace, base_dir: str | Path | None = None) -> SearchSpace:
    """A space from a shipped or registered name, a YAML file path (relative to ``base_dir``), a declaration
    mapping, or a SearchSpace (returned as is).  Errors are one line: the file, the YAML path and the fix."""
    if isinstance(value, SearchSpace):
        return value
    if isinstance(value, Mapping):
        return SearchSpace(value)
    if isinstance(value, str) and value in list_spaces():
        return get_space(value)
    if not isinstance(value, (str, Path)):
        raise TypeError(f"a space is a name, a YAML file path or a declaration mapping, got {type(value).__name__}")
    text = str(value)
    if isinstance(value, str) and not text.endswith((".yaml", ".yml")) and "/" not in text:
        raise ValueError(f"unknown search space {text!r}; known: {', '.join(list_spaces())} (or a path to a YAML "
                         "declaration, e.g. my_space.yaml)")
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    raw = read_declaration(path)
    try:
        return SearchSpace(raw)
    except DeclarationError as err:
        raise DeclarationError(err.path, err.problem, file=str(path)) from None


__all__ = ["DECLARATIONS", "get_space", "list_spaces", "load_space", "read_declaration", "register_space",
           "shipped_spaces"]
