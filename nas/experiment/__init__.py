"""The experiments: typed, strict YAML sections of every kind and the one loader (floor 3 of nas/).

* ``sections``: what the kinds share (output, ray) and a search's own (controller, budget, resources,
  scheduler, evaluator, verify), each a dataclass owning its defaults and ranges;
* ``proxy``: the proxy recipe (``ProxyConfig``, also the size of a supernet);
* ``search`` / ``supernet`` / ``train`` / ``trial``: the kinds (``nas search``, ``nas supernet train``,
  ``nas train``, ``nas train-proxy``);
* ``load``: the one loader (YAML, ``--set``, types, paths, checks), the run-dir rules, the data check;
* ``run_dir``: the names in a search's run dir and the one command that continues a run;
* ``space``: where an experiment's ``space`` is looked up.

Imports only the floors below: ``nas.config``/``files``/``cluster``, ``nas.data``, ``nas.cost``.
"""

from .load import check_data, load, load_run, prepare_run_dir, relocated, write_config
from .proxy import ProxyConfig
from .search import Experiment, build_controller, load_experiment
from .sections import (BudgetConfig, ControllerConfig, EvaluatorConfig, OutputConfig, RayConfig, ResourcesConfig,
                       SchedulerConfig, VerifyConfig)

__all__ = ["BudgetConfig", "ControllerConfig", "EvaluatorConfig", "Experiment", "OutputConfig", "ProxyConfig",
           "RayConfig", "ResourcesConfig", "SchedulerConfig", "VerifyConfig", "build_controller", "check_data", "load",
           "load_experiment", "load_run", "prepare_run_dir", "relocated", "write_config"]
