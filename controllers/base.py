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
* ``recommend() -> Genotype | None``: the search's result, a told genotype: the best told by default;
  ``bayes`` recommends by its model under a known noise (``recommend: auto``).  A search records it in
  ``best.yaml`` under ``recommended``.
* ``enqueue(genotypes)``: warm start (Optuna's ``enqueue_trial``, Ray's
  ``points_to_evaluate``): the next asks return these genotypes, in order,
  before the controller proposes its own (e.g. evaluate EfficientNet-B0 first).
* ``add_evaluated(genotype, reward)``: a result evaluated elsewhere (an
  earlier search, Ray's ``add_evaluated_point``), learned from as if asked.

No budget spent on repeats
--------------------------
"The same" means the same **network**: two genotypes are one candidate when
the controller's ``key`` maps them to one value -- by default the space's
canonical network key (``space.canonical``, :func:`search_spaces.network_key`),
so NAS-Bench-Macro's 6,561 genotypes are 3,969 candidates; a caller that
evaluates a scaled or otherwise transformed network passes its own
``key=`` (a function of the genotype returning a hashable value).
A controller does not propose a network that was already evaluated (told,
failed included, or added) or is pending, unless its settings say
``allow_repeats: true`` (a noisy evaluator, where a second evaluation tells
something).  A repeated proposal is redrawn from the controller's own
proposal rule at most ``resample_tries`` times; then a bounded random walk
of single-decision mutations from the repeated genotype looks for an unseen
neighbour (also ``resample_tries`` steps, each meeting the constraint);
only if that fails too (a nearly exhausted space) is the repeat returned,
counted in ``stats()['repeats']`` and logged.  A redrawn proposal that was a
*different* genotype of a network already seen is also counted in
``stats()['aliases']``.  Enqueued genotypes already evaluated are skipped the
same way.  Every controller's settings dataclass
derives from :class:`ProposalSettings`, which holds these two fields.

Construction — the one way
--------------------------
``cls(space, seed=0, constraint=None, settings=None, *, key=None, budget=None, noise=None)`` where ``settings`` is an
instance of ``cls.settings_cls`` (a frozen dataclass with defaults; ``None``
means all defaults).  The driver validates YAML with
``nas.config.from_dict(cls.settings_cls, data)`` and passes the object;
``controllers.make_controller(name, ..., settings=dict)`` does the same from a
plain dict.  ``constraint`` (a :class:`~controllers.constraint.Constraint`) is
not saved in the state: pass the same one again when restoring; nor is ``key``.
``budget`` is a hint: the number of samples the caller expects to evaluate
(None: unknown).  Controllers may size their defaults by it (evolution's
population); it never stops a controller from proposing more.  ``noise`` is a
hint too: the standard deviation of a told reward around the value the search is
judged by, when the evaluator knows it (the table evaluator drawing one recorded
training: the spread of the table's trainings; an exact evaluator: 0; None:
unknown).  A controller may use it to report its best (``bayes``'s ``recommend:
auto``); it never changes a proposal.

Randomness: each controller owns ``numpy.random.default_rng(seed)`` (the RL
policy also a seeded ``torch.Generator``) and saves its state; no global RNG.
"""

from __future__ import annotations

import abc
import dataclasses
import logging
import math
import numbers
from collections import deque
from typing import Any, Callable, ClassVar, Hashable, Iterable

import numpy as np

from search_spaces import Genotype, SearchSpace

from .constraint import Constraint
from .plain import copy_plain, lists_for_tuples, pack_rows, unpack_rows
from .settings import ProposalSettings

logger = logging.getLogger(__name__)

#: Version of the ``state_dict`` layout; bumped when it changes.  Format 1 (no record of evaluated
#: genotypes, no warm-start queue) is still read: dedup then starts from the genotypes pending at the save.
STATE_FORMAT = 2
_READABLE_FORMATS = (1, 2)


class Controller(abc.ABC):
    """Base class: pending-ask bookkeeping, failed-trial handling, RNG and state.

    Subclasses set ``name`` and ``settings_cls`` and implement ``_propose``,
    ``_observe``, ``_core_state`` and ``_load_core_state`` (``_core_stats``
    optionally).
    """

    name: ClassVar[str] = ""
    settings_cls: ClassVar[type] = type(None)

    def __init__(self, space: SearchSpace, seed: int = 0, constraint: Constraint | None = None,
                 settings: Any = None, *, key: Callable[[Genotype], Hashable] | None = None,
                 budget: int | None = None, noise: float | None = None) -> None:
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
        if not isinstance(settings, ProposalSettings):
            raise TypeError(f"{type(self).__name__}.settings_cls ({self.settings_cls.__name__}) must derive from "
                            "controllers.ProposalSettings (allow_repeats, resample_tries)")
        if key is not None and not callable(key):
            raise TypeError(f"{type(self).__name__}: key must be a function of a genotype (e.g. space.canonical) "
                            f"or None, got {type(key).__name__}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, numbers.Integral)
                                   or budget < 1):
            raise ValueError(f"{type(self).__name__}: budget must be a positive integer (the expected number of "
                             f"samples) or None, got {budget!r}")
        if noise is not None and (isinstance(noise, bool) or not isinstance(noise, numbers.Real)
                                  or not math.isfinite(noise) or noise < 0):
            raise ValueError(f"{type(self).__name__}: noise must be a finite number >= 0 (the standard deviation of a "
                             f"told reward around the truth) or None, got {noise!r}")
        self.space = space
        self.noise = None if noise is None else float(noise)
        self.key: Callable[[Genotype], Hashable] = space.canonical if key is None else key
        self.budget = None if budget is None else int(budget)
        self.seed = int(seed)
        self.constraint = constraint
        self.settings = settings
        self._rng = np.random.default_rng(self.seed)
        self._pending: dict[int, tuple[Genotype, dict]] = {}
        self._tickets: dict[Genotype, deque[int]] = {}
        self._next_ticket = 0
        self._asked = self._told = self._failed = 0
        self._best: tuple[Genotype, float] | None = None
        # Key -> first genotype told, failed or added (insertion-ordered, so the state is deterministic).
        self._evaluated: dict[Hashable, Genotype] = {}
        self._pending_keys: dict[Hashable, list[Genotype]] = {}  # key -> genotypes pending under it
        self._queue: deque[Genotype] = deque()  # enqueued (warm start), asked first
        self._added = self._resampled = self._neighbours = self._repeats = self._from_queue = 0
        self._aliases = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed}, settings={self.settings})"

    # -- the interface ------------------------------------------------------
    def ask(self) -> Genotype:
        """Propose one genotype (in the space, meeting the constraint if one is set).

        Enqueued genotypes come first; then the controller's own proposal, never one already
        evaluated or pending unless ``settings.allow_repeats`` (see the module docstring).
        """
        genotype, info = self._next_proposal()
        ticket = self._next_ticket
        self._next_ticket += 1
        self._pending[ticket] = (genotype, info)
        self._tickets.setdefault(genotype, deque()).append(ticket)
        self._pending_keys.setdefault(self.key(genotype), []).append(genotype)
        self._asked += 1
        self._accepted(genotype, info)
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
        self._unpend(genotype)
        self._told += 1
        self._record(genotype, value)
        self._observe(genotype, value, info)

    def enqueue(self, genotypes: Iterable[Genotype]) -> None:
        """Warm start: the next asks return these genotypes, in this order, before any own proposal.

        Each must lie in the space (and meet the constraint, if one is set): a ValueError names
        the first that does not.  A genotype already evaluated, pending or enqueued is skipped
        (unless ``allow_repeats``), so enqueueing the same warm start again on a resumed search
        costs nothing.
        """
        items = list(genotypes)
        for i, genotype in enumerate(items):
            self._check_external(genotype, f"enqueue: genotype #{i}")
        for genotype in items:
            queued = {self.key(g) for g in self._queue}
            if self.settings.allow_repeats or not (self._seen(genotype) or self.key(genotype) in queued):
                self._queue.append(genotype)

    def add_evaluated(self, genotype: Genotype, reward: float | None) -> None:
        """Learn from a result evaluated outside this controller's asks (an earlier search, a known genotype).

        ``reward`` as in :meth:`tell` (None/NaN/inf: failed).  The genotype counts as evaluated
        (it is not proposed again) and each controller learns from it as from a told result:
        evolution adds it to the population, RL to its next update (its log-probability taken
        under the current policy), random search only records it.
        """
        self._check_external(genotype, "add_evaluated: the genotype")
        value = _check_reward(reward)
        self._added += 1
        self._record(genotype, value)
        self._observe(genotype, value, self._info_for(genotype, "added"))

    @property
    def num_pending(self) -> int:
        return len(self._pending)

    @property
    def best(self) -> tuple[Genotype, float] | None:
        """(genotype, reward) of the best successful trial told so far, or None."""
        return self._best

    def recommend(self) -> Genotype | None:
        """The genotype this controller recommends as the search's result, or None before a successful result.

        The base rule is the best told result (:attr:`best`).  Under a noisy evaluator the best told value is
        biased up (the maximum of many noisy draws), so a model-based controller may recommend by its model
        instead (``bayes``: the told network of highest posterior mean).  Always a genotype that was told or
        added with a successful result; it never changes the controller's state or its proposals.
        """
        return None if self._best is None else self._best[0]

    def stats(self) -> dict[str, float]:
        """Numbers for logging: counts, best reward, and the controller's own."""
        out: dict[str, float] = {
            "asked": float(self._asked), "told": float(self._told), "failed": float(self._failed),
            "pending": float(len(self._pending)),
            "best_reward": self._best[1] if self._best else math.nan,
            "evaluated_unique": float(len(self._evaluated)), "added": float(self._added),
            "enqueued": float(len(self._queue)), "from_queue": float(self._from_queue),
            "resampled": float(self._resampled), "neighbours": float(self._neighbours),
            "repeats": float(self._repeats), "aliases": float(self._aliases),
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
            "pending": [{"ticket": t, "genotype": self.space.encode(g), "info": copy_plain(info)}
                        for t, (g, info) in sorted(self._pending.items())],
            "counts": {"asked": self._asked, "told": self._told, "failed": self._failed},
            "best": None if self._best is None else {"genotype": self.space.encode(self._best[0]),
                                                     "reward": self._best[1]},
            "evaluated": pack_rows([self.space.encode(g) for g in self._evaluated.values()],
                                   len(self.space.decision_sizes)),
            "queue": [self.space.encode(g) for g in self._queue],
            "proposals": {"added": self._added, "resampled": self._resampled, "neighbours": self._neighbours,
                          "repeats": self._repeats, "from_queue": self._from_queue, "aliases": self._aliases},
            "core": self._core_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` of the same controller, space and settings.

        A setting left unset here (None: derived, e.g. evolution's budget-sized population) takes the saved
        value, so a run saved with other defaults resumes as it ran; a setting given here that differs from
        the saved one is a ValueError naming it.
        """
        if not isinstance(state, dict) or "controller" not in state:
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict from state_dict(), "
                             f"got {type(state).__name__}")
        if state.get("format") not in _READABLE_FORMATS:
            raise ValueError(f"controller state format {state.get('format')!r} is not supported; "
                             f"this version reads formats {', '.join(map(str, _READABLE_FORMATS))}")
        if state["controller"] != self.name:
            raise ValueError(f"the state is of controller {state['controller']!r}, not {self.name!r}; "
                             f"restore it with make_controller({state['controller']!r}, ...)")
        sizes = list(state["space"]["decision_sizes"])
        if sizes != self.space.decision_sizes:
            raise ValueError(f"the state is of search space {state['space']['name']!r} with decision sizes {sizes}, "
                             f"this controller searches {self.space.name!r} ({self.space.decision_sizes}); "
                             "restore into a controller built on the same space")
        adopted = self._saved_settings(state)
        if adopted:
            self.settings = dataclasses.replace(self.settings, **adopted)
            self._settings_adopted()
            logger.info("%s: resuming with the saved settings %s (not set here)", self.name,
                        ", ".join(f"{k}={v!r}" for k, v in adopted.items()))
        self.seed = int(state["seed"])
        self._rng = np.random.default_rng(self.seed)
        self._rng.bit_generator.state = copy_plain(state["rng"])
        self._next_ticket = int(state["next_ticket"])
        self._pending = {}
        self._tickets = {}
        self._pending_keys = {}
        for item in state["pending"]:
            genotype = self.space.decode(item["genotype"])
            self._pending[int(item["ticket"])] = (genotype, copy_plain(item["info"]))
            self._tickets.setdefault(genotype, deque()).append(int(item["ticket"]))
            self._pending_keys.setdefault(self.key(genotype), []).append(genotype)
        counts = state["counts"]
        self._asked, self._told, self._failed = int(counts["asked"]), int(counts["told"]), int(counts["failed"])
        best = state["best"]
        self._best = None if best is None else (self.space.decode(best["genotype"]), float(best["reward"]))
        self._evaluated = {}
        for codes in unpack_rows(state.get("evaluated")):
            genotype = self.space.decode(codes)
            self._evaluated.setdefault(self.key(genotype), genotype)
        self._queue = deque(self.space.decode(c) for c in state.get("queue", ()))
        proposals = state.get("proposals", {})
        self._added, self._resampled, self._neighbours, self._repeats, self._from_queue = (
            int(proposals.get(k, 0)) for k in ("added", "resampled", "neighbours", "repeats", "from_queue"))
        self._aliases = int(proposals.get("aliases", 0))
        self._load_core_state(state["core"])

    def _saved_settings(self, state: dict[str, Any]) -> dict[str, Any]:
        """The saved settings to adopt: those left unset here (None, e.g. evolution's budget-sized population)
        that the state has a value for (a run saved by an older version recorded population=64, sample=16).
        Any other difference, or a setting this version does not know, is a ValueError."""
        mine = dataclasses.asdict(self.settings)
        saved = dict(state["settings"])
        if state["format"] == 1:  # saved before ProposalSettings existed: its defaults applied then
            saved = {**dataclasses.asdict(ProposalSettings()), **saved}
        adopted = {k: saved[k] for k in mine if mine[k] is None and saved.get(k) is not None}
        diff = [k for k in mine if k not in adopted and lists_for_tuples(mine[k]) != lists_for_tuples(saved.get(k))]
        if diff or set(saved) - set(mine):
            key = diff[0] if diff else sorted(set(saved) - set(mine))[0]
            raise ValueError(f"the state was saved with settings {key}={saved.get(key)!r}, this controller has "
                             f"{key}={mine.get(key)!r}; build the controller with the saved settings")
        return adopted

    # -- proposals without repeats ------------------------------------------------
    def _seen(self, genotype: Genotype) -> bool:
        """Its network (``key``) evaluated (told, failed or added) or pending."""
        return self._seen_as(genotype) is not None

    def _seen_as(self, genotype: Genotype) -> Genotype | None:
        """The first genotype seen (evaluated, else pending) with ``genotype``'s network key, or None."""
        key = self.key(genotype)
        first = self._evaluated.get(key)
        if first is None:
            pending = self._pending_keys.get(key)
            first = pending[0] if pending else None
        return first

    @staticmethod
    def _other(first: Genotype, genotype: Genotype) -> bool:
        """``first`` is another genotype than ``genotype`` (so ``genotype`` is an alias of its network)."""
        return first is not genotype and first != genotype

    def _unpend(self, genotype: Genotype) -> None:
        key = self.key(genotype)
        items = self._pending_keys[key]
        items.remove(genotype)
        if not items:
            del self._pending_keys[key]

    def _next_proposal(self) -> tuple[Genotype, dict]:
        repeats_ok = self.settings.allow_repeats
        while self._queue:
            genotype = self._queue.popleft()
            if repeats_ok or not self._seen(genotype):
                self._from_queue += 1
                return genotype, self._info_for(genotype, "enqueued")
        tries = self.settings.resample_tries
        for _ in range(tries):
            genotype, info = self._propose()
            first = self._seen_as(genotype)
            if first is None:
                return genotype, info
            if repeats_ok:
                self._repeats += 1
                return genotype, info
            self._aliases += self._other(first, genotype)
            self._resampled += 1
        # The proposal rule keeps repeating itself (e.g. a near-deterministic policy): walk away from
        # the repeat one mutation at a time until an unseen genotype meeting the constraint turns up.
        walker = genotype
        for _ in range(tries):
            walker = self.space.mutate(walker, self._rng)
            if not self._seen(walker) and (self.constraint is None or self.constraint.satisfied(walker)):
                self._neighbours += 1
                return walker, self._info_for(walker, "neighbour")
        self._repeats += 1
        logger.warning("%s: no unseen genotype after %d proposals and %d mutation steps (%d evaluated); "
                       "proposing %s again", self.name, tries, tries, len(self._evaluated),
                       genotype.to_string(self.space.stem))
        return genotype, info

    def _record(self, genotype: Genotype, value: float | None) -> None:
        self._evaluated.setdefault(self.key(genotype), genotype)
        if value is None:
            self._failed += 1
        elif self._best is None or value > self._best[1]:
            self._best = (genotype, value)

    def _check_external(self, genotype: object, what: str) -> None:
        if not isinstance(genotype, Genotype):
            raise TypeError(f"{what} must be a Genotype (e.g. search_spaces.resolve_genotype('b0')), "
                            f"got {type(genotype).__name__}")
        try:
            self.space.validate(genotype)
        except ValueError as exc:
            raise ValueError(f"{what} is not in search space {self.space.name!r}: {exc}") from None
        if self.constraint is not None and not self.constraint.satisfied(genotype):
            c = self.constraint
            unit = f" {c.unit}" if c.unit else ""
            raise ValueError(f"{what} has cost {float(c.cost(genotype)):.6g}{unit}, outside the constraint "
                             f"[{c.lo:.6g}, {c.hi:.6g}]{unit}; widen the bounds or leave it out")

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

    def _info_for(self, genotype: Genotype, kind: str) -> dict:
        """Per-ask data for a genotype this controller did not propose itself.

        ``kind``: 'enqueued', 'neighbour' (the walk away from a repeat) or 'added'
        (:meth:`add_evaluated`).  RL needs the genotype's log-probability here.
        """
        return {}

    def _settings_adopted(self) -> None:
        """Called after ``load_state_dict`` adopted saved settings left unset here: re-derive what depends on them."""

    def _accepted(self, genotype: Genotype, info: dict) -> None:
        """Called once per ask with the proposal kept (e.g. to count proposal kinds)."""


def _check_reward(reward: object) -> float | None:
    """None for a failed trial (None, NaN, +-inf), else the reward as a float."""
    if reward is None:
        return None
    if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, numbers.Real):
        raise TypeError(f"tell: reward must be a number or None (failed trial), got {type(reward).__name__} "
                        f"{reward!r}")
    value = float(reward)
    return value if math.isfinite(value) else None
