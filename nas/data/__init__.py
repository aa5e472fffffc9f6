"""The data layer of everything in nas/ that trains or scores: proxy trials, the supernet, ``nas train``.

* ``datasets``: :class:`DataConfig` (YAML section ``data``), :func:`load_data` (builtin, npz, cifar10,
  imagefolder; a seeded, class-stratified held-out part of the training split; cached per process)
  and the loaded :class:`Dataset`;
* ``imagefolder``: ImageNet-style class folders decoded with Pillow;
* ``cifar_pickle``: the restricted unpickler of the official CIFAR-10 batches;
* ``source``: a dataset before the split, as every reader returns it;
* ``tables``: tabular benchmarks (the shipped NAS-Bench-Macro, users' JSON/CSV tables): a converged
  accuracy for every network of a space, looked up by ``search_spaces.network_key``.

Floor 1 of nas/: imports only ``nas.files`` (and ``search_spaces``).
"""

from .datasets import BUILTINS, DataConfig, Dataset, load_data, split_indices

__all__ = ["BUILTINS", "DataConfig", "Dataset", "load_data", "split_indices"]
