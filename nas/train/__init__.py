"""Full-recipe training of a (scaled) genotype: ``nas train``.

``config`` (the strict YAML sections), ``augment`` + ``pipeline`` (tensor augmentation), ``optim``
(TF RMSProp, the schedule, EMA), ``loop`` (the plain per-worker function), ``checkpoint`` (what a
checkpoint and a finished run hold).  ``ray_train`` is the one module that imports Ray.
"""
