"""Where an experiment's ``space`` is resolved: one place, so every kind (search, supernet) reads it alike.

``space:`` in an experiment is a shipped name (``mnasnet``), a path to a YAML declaration (relative to
the experiment file's folder), or an inline declaration mapping.  :func:`space_value` runs once, when
the experiment loads: a name stays a name, a file or a mapping becomes the declaration itself (checked
strictly; one line naming the YAML path).  So the experiment carries the space **by value** to every
Ray worker, actor and Tune trial (nothing is registered by name in one process), and the resolved
``config.yaml`` in the run dir holds the declaration: ``--resume RUN_DIR`` uses the run dir's copy,
even when the YAML file was changed or removed since (the run dir's copy wins).

A supernet checkpoint records the declaration too (``space_record``) and is rebuilt from it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError


def space_value(value: Any, base_dir: str | Path | None = None, path: str = "space") -> Any:
    """The ``space`` value an experiment keeps: a shipped/registered name as is, else the checked declaration."""
    from search_spaces import list_spaces, load_space
    from search_spaces.checks import DeclarationError

    if isinstance(value, str) and value in list_spaces():
        return value
    if value is None or not isinstance(value, (str, Mapping)):
        raise ConfigError(f"{path}: expected a shipped space name ({', '.join(list_spaces())}), a YAML file path "
                          f"or a declaration mapping, got {value!r}")
    try:
        space = load_space(value, base_dir)
    except DeclarationError as err:
        if isinstance(value, Mapping) and err.file is None:
            raise ConfigError(f"{path}.{err.path}: {err.problem}") from None
        raise ConfigError(f"{path}: {err}") from None
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None
    return space.to_declaration()


@lru_cache(maxsize=16)
def _from_text(text: str):
    from search_spaces import SearchSpace

    return SearchSpace(json.loads(text))


def resolve_space(value: Any, path: str = "space"):
    """The search space of a ``space`` value (a name or a declaration mapping); ConfigError naming ``path``."""
    from search_spaces import get_space

    try:
        if isinstance(value, Mapping):
            return _from_text(json.dumps(value))  # key order kept: it is the decisions' encode order
        return get_space(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


def space_record(value: Any) -> dict:
    """What a supernet checkpoint records of its space: the declaration (a name resolved to it)."""
    return resolve_space(value).to_declaration()


def space_label(value: Any) -> str:
    """A space for one line of output: its name (a file's or inline declaration's ``name``)."""
    if isinstance(value, str):
        return value
    return str(value.get("name", "inline")) if isinstance(value, Mapping) else repr(value)


__all__ = ["resolve_space", "space_label", "space_record", "space_value"]
