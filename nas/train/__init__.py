"""Full-recipe training of a (scaled) genotype, ``nas train`` (floor 5 of nas/).

``augment`` + ``pipeline`` (tensor augmentation), ``optim`` (TF RMSProp, the schedule, EMA), ``loop``
(the plain per-worker function), ``checkpoint`` (what a checkpoint and a finished run hold).  The
recipe's typed sections are ``nas.experiment.train``; Ray Train runs the loop from ``nas.ray.train``.
No Ray here.
"""
