"""What a candidate costs on the TARGET (deployment) model, and the reward it earns (floor 2 of nas/).

* ``target``: :class:`~nas.cost.target.TargetModel`, the deployment model a cost is measured on, and the
  ranges of a model's scale;
* ``base``: the :class:`~nas.cost.base.CostModel` interface and ``build_cost_model``;
* ``analytic``: parameters and multiply-adds from the layer walk;
* ``latency``: measured latency, per-target lookup tables and the latency cost model;
* ``objective``: MnasNet's reward ``ACC * (cost / T) ** w`` (``ObjectiveConfig``, ``reward``).
"""
