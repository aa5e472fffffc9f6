"""The proxy evaluator: train a down-scaled candidate briefly and measure held-out accuracy.

* ``data``: datasets chosen by config (builtin, npz, cifar10, imagefolder), a seeded held-out split;
* ``imagefolder``: ImageNet-style class folders decoded with Pillow;
* ``config``: :class:`~nas.proxy.config.ProxyConfig`, the training recipe;
* ``train``: the training loop (``train_proxy``);
* ``ops``: its device-side pieces (resident data, batched augmentation, schedule, optimizer).
"""
