"""A Ray Tune ``Searcher`` around any ask/tell controller (the only Ray import in controllers/).

Like Ray's ``OptunaSearch`` around Optuna's ask/tell: ``suggest`` asks the
controller for a genotype and hands Tune the config ``{"genotype": "<TF block
string>"}``; ``on_trial_complete`` tells the controller the trial's reward, or
``None`` when the trial errored, reported no metric, or reported
``status: failed`` -- or whatever an injected ``reward_of(result, error)``
decides (effnas's driver passes ``nas.search.trial.reward_to_tell``, which
also tells a trial stopped early by a scheduler as ``None``).  ``save``/``restore`` pickle the controller's
``state_dict()`` plus the map of live trials, so a resumed Tune run continues
the same search.  Usable in a user's own ``Tuner``::

    searcher = ControllerSearcher(make_controller("evolution", get_space("mnasnet")), metric="reward")
    tune.Tuner(my_trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=100)).fit()
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any, Callable, Iterable

from ray.tune.search import Searcher

from search_spaces import Genotype

logger = logging.getLogger(__name__)

GENOTYPE_KEY = "genotype"


class ControllerSearcher(Searcher):
    """Maps Tune trial ids to genotypes; everything else is the controller's."""

    def __init__(self, controller: Any, metric: str = "reward", mode: str = "max",
                 extra_config: dict[str, Any] | None = None, max_trials: int | None = None,
                 recorded_ids: Callable[[], Iterable[str]] | None = None,
                 reward_of: Callable[[dict | None, bool], float | None] | None = None) -> None:
        """``max_trials``: suggest no more than this many trials in all (resumed sessions included).

        ``recorded_ids``: a function returning the ids of trials finished and recorded elsewhere
        (e.g. a results file).  After a restore, recorded trials this searcher's checkpoint never
        saw (finished after Tune's last experiment checkpoint, before a crash) count against
        ``max_trials``, so a resumed search does not run more trials than its budget.

        ``reward_of(result, error)``: the reward to tell for a completed trial (``None``: no reward);
        default: ``metric`` of the last result, ``None`` for an error, ``status: failed`` or a non-finite value.
        """
        if mode != "max":
            raise ValueError(f"controllers maximise their reward: mode must be 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self.controller = controller
        self.extra_config = dict(extra_config or {})
        self.max_trials = max_trials
        self.recorded_ids = recorded_ids
        self.reward_of = reward_of
        self.live: dict[str, str] = {}
        self.done: set[str] = set()
        self.unseen = 0  # recorded trials from after the checkpoint this searcher was restored from

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if metric:
            self._metric = metric
        if mode and mode != "max":
            return False
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.max_trials is not None and len(self.done) + len(self.live) + self.unseen >= self.max_trials:
            return Searcher.FINISHED
        genotype = self.controller.ask()
        text = genotype.to_string()
        self.live[trial_id] = text
        return {GENOTYPE_KEY: text, **self.extra_config}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        text = self.live.pop(trial_id, None)
        if text is None:
            logger.warning("trial %s completed but was not suggested by this searcher; ignored", trial_id)
            return
        self.done.add(trial_id)
        self.controller.tell(Genotype.from_string(text), self._reward(result, error))

    def _reward(self, result: dict | None, error: bool) -> float | None:
        if self.reward_of is not None:
            return self.reward_of(result, error)
        if error or not result or result.get("status") == "failed":
            return None
        value = result.get(self.metric)
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"controller": self.controller.state_dict(), "live": dict(self.live),
                         "done": sorted(self.done), "metric": self.metric}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.controller.load_state_dict(state["controller"])
        self.live = dict(state["live"])
        self.done = set(state.get("done", ()))
        self._metric = state["metric"]
        if self.recorded_ids is not None:
            self.unseen = len(set(self.recorded_ids()) - self.done - set(self.live))
            if self.unseen:
                logger.info("%d trial(s) finished after the last checkpoint; they count against the budget",
                            self.unseen)
