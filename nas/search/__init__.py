"""The search: one session loop for every evaluator, its outputs, the stages of a run (floor 8 of nas/).

* ``session``: the rules of every search, written once (budget, time limit, failures, resume state,
  progress with rate and ETA, meaningless-result warnings, interrupts) and the proposers (a controller,
  a fixed list);
* ``batches``: the batch pump (in the driver, or in ``nas.ray.pool`` workers);
* ``recorder`` + ``results``: the run dir's ``trials.jsonl``, TensorBoard, best.yaml, Pareto front;
* ``resume``: what a resume may change; seeding a controller from recorded trials;
* ``stages``: ``nas search`` end to end (search, baseline, verification, report);
* ``verify`` + ``report``: the verification plan and table, report.md and its plots;
* ``scale_grid``: EfficientNet's step 1, the (alpha, beta, gamma) grid, as a session.

The Tune trials of the ``trials`` placement run in ``nas.ray.tune``; Ray is imported only there.
"""
