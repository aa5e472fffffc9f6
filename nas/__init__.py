"""effnas: the framework around the search space, the models and the controllers.

Rooms, floor by floor (a room imports only rooms on lower floors; tests/test_architecture.py checks):

0. ``config``, ``files``, ``errors``, ``stats``, ``cluster``, ``export``, ``progress``: typed YAML, atomic files,
   how a run ends early, statistics, joining a cluster, ONNX, progress lines;
1. ``data``: datasets and the held-out split (every training reads them);
2. ``cost``: the target model, params/MACs, latency tables, the reward;
3. ``experiment``: the typed experiments of every kind and the one loader, the run-dir rules;
4. ``proxy``: proxy training (the loop and its device-side pieces);
5. ``supernet``, ``train``: the supernet (train, score, checkpoint); full-recipe training;
6. ``evaluators``: the one evaluator protocol -- proxy, supernet;
7. ``ray``: the only room that imports Ray -- local start, Tune trials, actor pool, Ray Train;
8. ``search``: the one session loop, its outputs, the stages of `nas search`, the scale grid;
9. ``cli``, ``commands``: the `nas` command.
"""

__version__ = "0.1.0"
