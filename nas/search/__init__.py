"""The search: one trial's data path, its results, the scale grid.

* ``objective``: the MnasNet reward ``ACC * (cost / T) ** w``;
* ``trial``: genotype -> proxy accuracy + target cost -> reward, one typed ``TrialResult``;
* ``results``: the run dir's files (trials.jsonl, best.yaml, Pareto front);
* ``scale_grid``: EfficientNet's step 1, the (alpha, beta, gamma) grid.
"""
