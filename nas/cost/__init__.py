"""Cost models: what a candidate costs on the TARGET (deployment) model.

* ``target``: :class:`~nas.cost.target.TargetModel`, the deployment model a cost is measured on (a leaf);
* ``base``: the :class:`~nas.cost.base.CostModel` interface and ``build_cost_model``;
* ``analytic``: parameters and multiply-adds from the layer walk;
* ``latency``: measured latency, per-target lookup tables and the latency cost model.
"""
