"""The proxy evaluator's engine: train a down-scaled candidate briefly and measure held-out accuracy.

* ``train``: the training loop (``train_proxy`` -> ``ProxyOutcome``);
* ``ops``: its device-side pieces (resident data, batched augmentation, schedule, optimizer), shared
  with the supernet and ``nas train``;
* ``runtime``: the torch-side choices of a recipe (device, autocast, layout, threads).

The recipe itself is ``nas.experiment.proxy.ProxyConfig``; the data ``nas.data``.  Floor 4 of nas/.
"""
