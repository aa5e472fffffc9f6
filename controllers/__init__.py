"""Search controllers: ask/tell cores (no Ray) and a Ray Tune Searcher adapter (its own module).

``make_controller('random'|'evolution'|'rl'|'bayes', space, seed=0, constraint=None, settings=None)``
builds one; see :mod:`controllers.base` for the interface and the one way to pass settings.
"""

from .base import Controller
from .bayes import BayesController, BayesSettings
from .constraint import Constraint, InfeasibleConstraintError
from .evolution import EvolutionSettings, RegularizedEvolution
from .random_search import RandomSearch, RandomSettings
from .registry import get_controller_class, list_controllers, make_controller, make_settings, register_controller
from .rl import RLController, RLSettings
from .settings import ProposalSettings

__all__ = [
    "BayesController", "BayesSettings", "Constraint", "Controller", "EvolutionSettings", "InfeasibleConstraintError",
    "ProposalSettings", "RLController",
    "RLSettings", "RandomSearch", "RandomSettings", "RegularizedEvolution", "get_controller_class", "list_controllers",
    "make_controller", "make_settings", "register_controller",
]
