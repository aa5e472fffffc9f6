"""A strict registry of controllers by name ('random', 'evolution', 'rl', 'bayes').

Duplicate names raise; an unknown name lists the known ones; a settings dict
with an unknown key is a TypeError listing the allowed keys (a typo is never
a silent no-op).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable

from search_spaces import Genotype, SearchSpace

from .base import Controller
from .bayes import BayesController
from .constraint import Constraint
from .evolution import RegularizedEvolution
from .random_search import RandomSearch
from .rl import RLController

_CONTROLLERS: dict[str, type[Controller]] = {}


def register_controller(cls: type[Controller], name: str | None = None) -> type[Controller]:
    """Register a Controller subclass under ``name`` (default ``cls.name``); a duplicate name raises."""
    if not (isinstance(cls, type) and issubclass(cls, Controller)):
        raise TypeError(f"register_controller expects a Controller subclass, got {cls!r}")
    name = name or cls.name
    if not name:
        raise ValueError(f"{cls.__name__} has no name; set the class attribute 'name' or pass name=")
    if name in _CONTROLLERS:
        raise ValueError(f"controller {name!r} is already registered ({_CONTROLLERS[name].__name__}); "
                         "pick another name")
    _CONTROLLERS[name] = cls
    return cls


def get_controller_class(name: str) -> type[Controller]:
    """The class registered as ``name``; an unknown name lists the known ones."""
    if name not in _CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known: {', '.join(list_controllers())}")
    return _CONTROLLERS[name]


def list_controllers() -> list[str]:
    return sorted(_CONTROLLERS)


def make_settings(cls: type[Controller], settings: Any = None) -> Any:
    """``cls.settings_cls`` from None (defaults), an instance, or a plain dict of its fields."""
    settings_cls = cls.settings_cls
    if settings is None or isinstance(settings, settings_cls):
        return settings_cls() if settings is None else settings
    if not isinstance(settings, dict):
        raise TypeError(f"settings for controller {cls.name!r} must be a dict or a {settings_cls.__name__}, "
                        f"got {type(settings).__name__}")
    allowed = [f.name for f in dataclasses.fields(settings_cls)]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise TypeError(f"unknown setting {unknown[0]!r} for controller {cls.name!r}; allowed: "
                        f"{', '.join(allowed) or '(none)'}")
    return settings_cls(**settings)


def make_controller(name: str, space: SearchSpace, seed: int = 0, constraint: Constraint | None = None,
                    settings: Any = None, *, key: Callable[[Genotype], Hashable] | None = None,
                    budget: int | None = None, noise: float | None = None) -> Controller:
    """Build the controller ``name`` on ``space``; ``settings``: None, a dict or the Settings object.

    ``key``: what makes two genotypes one candidate (default ``space.canonical``, the network);
    ``budget``: the expected number of samples, a hint; ``noise``: the standard deviation of a told reward around
    the truth when the evaluator knows it, a hint (see :mod:`controllers.base`).
    """
    cls = get_controller_class(name)
    return cls(space, seed=seed, constraint=constraint, settings=make_settings(cls, settings), key=key, budget=budget,
               noise=noise)


register_controller(RandomSearch)
register_controller(RegularizedEvolution)
register_controller(RLController)
register_controller(BayesController)
