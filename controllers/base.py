"""The ask/tell controller core: one interface for random search, evolution and RL.

A controller proposes genotypes of a :class:`~search_spaces.SearchSpace` and
learns from their rewards (MnasNet's ``ACC * (cost/T)^w``, computed by the
caller).  The interface is the one Optuna and Ray's Searchers wrap:

* ``ask() -> Genotype``: one proposal.  Several asks may be pending at once
  (asynchronous parallel search, Real et al. 2019 section 3).
* ``tell(genotype, reward)``: the result of one earlier ask, in any order.
  ``reward`` is a float, or ``None`` / NaN / inf for a failed trial (counted,
  never a crash; each controller documents what it learns from a failure).
  The genotype is matched to the **oldest pending ask** of an equal genotype,
  so a genotype asked twice is told twice.  A genotype with no pending ask is
  a ValueError.
* ``state_dict()`` / ``load_state_dict(state)``: plain data (dicts, lists,
  numbers, strings; JSON- and pickle-able) holding everything, the RNG state
  included, so a controller restored into a fresh instance makes exactly the
  proposals the original would have made.
* ``stats() -> dict[str, float]``: numbers for logging (TensorBoard).

Construction — the one way
--------------------------
``cls(space, seed=0, constraint=None, settings=None)`` where ``settings`` is an
instance of ``cls.settings_cls`` (a frozen dataclass with defaults; ``None``
means all defaults).  The driver validates YAML with
``nas.config.from_dict(cls.settings_cls, data)`` and passes the object;
``controllers.make_controller(name, ..., settings=dict)`` does the same from a
plain dict.  ``constraint`` (a :class:`~controllers.constraint.Constraint`) is
not saved in the state: pass the same one again when restoring.

Randomness: each controller owns ``numpy.random.default_rng(seed)`` (the RL
policy also a seeded ``torch.Generator``) and saves its state; no global RNG.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import numbers
from collections import deque
from typing import Any, Callable, ClassVar

import numpy as np

from search_spaces import Genotype, SearchSpace

from .constraint import Constraint

#: Version of the ``state_dict`` layout; bumped when it changes.
STATE_FORMAT = 1


class Controller(abc.ABC):
    """Base class: pending-ask bookkeeping, failed-trial handling, RNG and state.

    Subclasses set ``name`` and ``settings_cls`` and implement ``_propose``,
    ``_observe``, ``_core_state`` and ``_load_core_state`` (``_core_stats``
    optionally).
    """

    name: ClassVar[str] = ""
    settings_cls: ClassVar[type] = type(None)

    def __init__(self, space: SearchSpace, seed: int = 0, constraint: Constraint | None = None,
                 settings: Any = None) -> None:
        if not isinstance(space, SearchSpace):
            raise TypeError(f"{type(self).__name__}: space must be a SearchSpace, got {type(space).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"{type(self).__name__}: seed must be a non-negative integer, got {seed!r}")
        if constraint is not None and not isinstance(constraint, Constraint):
            raise TypeError(f"{type(self).__name__}: constraint must be a controllers.Constraint or None, "
                            f"got {type(constraint).__name__}")
        if settings is None:
            settings = self.settings_cls()
        if not isinstance(settings, self.settings_cls):
            raise TypeError(f"{type(self).__name__}: settings must be a {self.settings_cls.__name__} (or None for "
                            f"the defaults), got {type(settings).__name__}; make_controller() accepts a dict")
        self.space = space
        self.seed = int(seed)
        self.constraint = constraint
        self.settings = settings
        self._rng = np.random.default_rng(self.seed)
        self._pending: dict[int, tuple[Genotype, dict]] = {}
        self._tickets: dict[Genotype, deque[int]] = {}
        self._next_ticket = 0
        self._asked = self._told = self._failed = 0
        self._best: tuple[Genotype, float] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed}, settings={self.settings})"

    # -- the interface ------------------------------------------------------
    def ask(self) -> Genotype:
        """Propose one genotype (in the space, meeting the constraint if one is set)."""
        genotype, info = self._propose()
        ticket = self._next_ticket
        self._next_ticket += 1
        self._pending[ticket] = (genotype, info)
        self._tickets.setdefault(genotype, deque()).append(ticket)
        self._asked += 1
        return genotype

    def tell(self, genotype: Genotype, reward: float | None) -> None:
        """Report the reward of an asked genotype; ``None``/NaN/inf mark a failed trial."""
        if not isinstance(genotype, Genotype):
            raise TypeError(f"tell: expected a Genotype, got {type(genotype).__name__}")
        value = _check_reward(reward)
        queue = self._tickets.get(genotype)
        if not queue:
            raise ValueError(
                f"tell: genotype {genotype.to_string(self.space.stem)!r} has no pending ask "
                f"({len(self._pending)} pending): it was never asked by this controller or its result was "
                "already told; tell each asked genotype exactly once")
        ticket = queue.popleft()
        if not queue:
            del self._tickets[genotype]
        _, info = self._pending.pop(ticket)
        self._told += 1
        if value is None:
            self._failed += 1
        elif self._best is None or value > self._best[1]:
            self._best = (genotype, value)
        self._observe(genotype, value, info)

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    @property
    def best(self) -> tuple[Genotype, float] | None:
        """(genotype, reward) of the best successful trial told so far, or None."""
        return self._best

    def stats(self) -> dict[str, float]:
        """Numbers for logging: counts, best reward, and the controller's own."""
        out: dict[str, float] = {
            "asked": float(self._asked), "told": float(self._told), "failed": float(self._failed),
            "pending": float(len(self._pending)),
            "best_reward": self._best[1] if self._best else math.nan,
        }
        out.update(self._core_stats())
        return out

    # -- state ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly, as plain data."""
        return {
            "format": STATE_FORMAT,
            "controller": self.name,
            "space": {"name": self.space.name, "decision_sizes": self.space.decision_sizes},
            "seed": self.seed,
            "settings": dataclasses.asdict(self.settings),
            "rng": self._rng.bit_generator.state,
            "next_ticket": self._next_ticket,
            "pending": [{"ticket": t, "genotype": self.space.encode(g), "info": _copy(info)}
                        for t, (g, info) in sorted(self._pending.items())],
            "counts": {"asked": self._asked, "told": self._told, "failed": self._failed},
            "best": None if self._best is None else {"genotype": self.space.encode(self._best[0]),
                                                     "reward": self._best[1]},
            "core": self._core_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of the same controller, space and settings."""
        if not isinstance(state, dict) or "controller" not in state:
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict from state_dict(), "
                             f"got {type(state).__name__}")
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"controller state format {state.get('format')!r} is not supported; "
                             f"this version reads format {STATE_FORMAT}")
        if state["controller"] != self.name:
            raise ValueError(f"the state is of controller {state['controller']!r}, not {self.name!r}; "
                             f"restore it with make_controller({state['controller']!r}, ...)")
        sizes = list(state["space"]["decision_sizes"])
        if sizes != self.space.decision_sizes:
            raise ValueError(f"the state is of search space {state['space']['name']!r} with decision sizes {sizes}, "
                             f"this controller searches {self.space.name!r} ({self.space.decision_sizes}); "
                             "restore into a controller built on the same space")
        mine = dataclasses.asdict(self.settings)
        saved = dict(state["settings"])
        diff = [k for k in mine if _plain(mine[k]) != _plain(saved.get(k))]
        if diff or set(saved) - set(mine):
            key = diff[0] if diff else sorted(set(saved) - set(mine))[0]
            raise ValueError(f"the state was saved with settings {key}={saved.get(key)!r}, this controller has "
                             f"{key}={mine.get(key)!r}; build the controller with the saved settings")
        self.seed = int(state["seed"])
        self._rng = np.random.default_rng(self.seed)
        self._rng.bit_generator.state = _copy(state["rng"])
        self._next_ticket = int(state["next_ticket"])
        self._pending = {}
        self._tickets = {}
        for item in state["pending"]:
            genotype = self.space.decode(item["genotype"])
            self._pending[int(item["ticket"])] = (genotype, _copy(item["info"]))
            self._tickets.setdefault(genotype, deque()).append(int(item["ticket"]))
        counts = state["counts"]
        self._asked, self._told, self._failed = int(counts["asked"]), int(counts["told"]), int(counts["failed"])
        best = state["best"]
        self._best = None if best is None else (self.space.decode(best["genotype"]), float(best["reward"]))
        self._load_core_state(state["core"])

    # -- helpers for subclasses -----------------------------------------------
    def _constrained(self, propose: Callable[[], Genotype], what: str) -> Genotype:
        """``propose()`` once, or under the constraint by bounded rejection."""
        if self.constraint is None:
            return propose()
        return self.constraint.sample(propose, what=f"{self.name} {what}")

    # -- to implement ---------------------------------------------------------
    @abc.abstractmethod
    def _propose(self) -> tuple[Genotype, dict]:
        """A genotype and plain per-ask data handed back to ``_observe`` (e.g. RL log-probs)."""

    @abc.abstractmethod
    def _observe(self, genotype: Genotype, reward: float | None, info: dict) -> None:
        """Learn from one result; ``reward`` is None for a failed trial."""

    @abc.abstractmethod
    def _core_state(self) -> dict[str, Any]:
        """The subclass's own state as plain data."""

    @abc.abstractmethod
    def _load_core_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_core_state`` returned."""

    def _core_stats(self) -> dict[str, float]:
        return {}


def _check_reward(reward: object) -> float | None:
    """None for a failed trial (None, NaN, +-inf), else the reward as a float."""
    if reward is None:
        return None
    if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, numbers.Real):
        raise TypeError(f"tell: reward must be a number or None (failed trial), got {type(reward).__name__} "
                        f"{reward!r}")
    value = float(reward)
    return value if math.isfinite(value) else None


def _plain(value: object) -> object:
    """Tuples as lists, so settings compare equal after a JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _copy(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


# -- settings validation, shared by the Settings dataclasses --------------------
def check_int(owner: str, field: str, value: object, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{owner}.{field} must be an integer >= {low}, got {value!r}")


def check_float(owner: str, field: str, value: object, low: float, high: float,
                low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{owner}.{field} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
