"""Where an experiment's ``space`` is looked up: one function, so every kind resolves it the same way.

``space`` names a registered search space (``search_spaces.get_space``); a supernet checkpoint records
the same value and is rebuilt through this function too.
"""

from __future__ import annotations

from typing import Any

from ..config import ConfigError


def resolve_space(value: Any, path: str = "space"):
    """The search space an experiment's ``space`` value names; ConfigError naming ``path`` and the fix."""
    from search_spaces import get_space

    try:
        return get_space(value)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None


__all__ = ["resolve_space"]
