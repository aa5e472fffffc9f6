"""A Ray Tune ``Searcher`` around any ask/tell controller (the only Ray import in controllers/).

Like Ray's ``OptunaSearch`` around Optuna's ask/tell: ``suggest`` asks the
controller for a genotype and hands Tune the config ``{"genotype": "<TF block
string>"}``; ``on_trial_complete`` tells the controller the trial's reward, or
``None`` when the trial errored, reported no metric, or reported
``status: failed``.  ``save``/``restore`` pickle the controller's
``state_dict()`` plus the map of live trials, so a resumed Tune run continues
the same search.  Usable in a user's own ``Tuner``::

    searcher = ControllerSearcher(make_controller("evolution", get_space("mnasnet")), metric="reward")
    tune.Tuner(my_trainable, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=100)).fit()
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any

from ray.tune.search import Searcher

from search_spaces import Genotype

logger = logging.getLogger(__name__)

GENOTYPE_KEY = "genotype"


class ControllerSearcher(Searcher):
    """Maps Tune trial ids to genotypes; everything else is the controller's."""

    def __init__(self, controller: Any, metric: str = "reward", mode: str = "max",
                 extra_config: dict[str, Any] | None = None) -> None:
        if mode != "max":
            raise ValueError(f"controllers maximise their reward: mode must be 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self.controller = controller
        self.extra_config = dict(extra_config or {})
        self.live: dict[str, str] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        if metric:
            self._metric = metric
        if mode and mode != "max":
            return False
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        genotype = self.controller.ask()
        text = genotype.to_string()
        self.live[trial_id] = text
        return {GENOTYPE_KEY: text, **self.extra_config}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        text = self.live.pop(trial_id, None)
        if text is None:
            logger.warning("trial %s completed but was not suggested by this searcher; ignored", trial_id)
            return
        self.controller.tell(Genotype.from_string(text), self._reward(result, error))

    def _reward(self, result: dict | None, error: bool) -> float | None:
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
                         "metric": self.metric}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.controller.load_state_dict(state["controller"])
        self.live = dict(state["live"])
        self._metric = state["metric"]
