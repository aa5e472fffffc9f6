"""A strict registry of search spaces by name."""

from __future__ import annotations

from typing import Callable

from .space import SearchSpace, mnasnet_space, tiny_space

_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str, factory: Callable[[], SearchSpace]) -> None:
    """Register ``factory`` under ``name``; a duplicate name raises."""
    if name in _SPACES:
        raise ValueError(f"search space {name!r} is already registered")
    _SPACES[name] = factory


def get_space(name: str) -> SearchSpace:
    """A fresh space by name; an unknown name lists the known ones."""
    if name not in _SPACES:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(sorted(_SPACES))}")
    return _SPACES[name]()


def list_spaces() -> list[str]:
    return sorted(_SPACES)


register_space("mnasnet", mnasnet_space)
register_space("tiny", tiny_space)
