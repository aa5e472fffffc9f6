"""Read the official CIFAR-10 python batches without executing code from them.

The batches (``data_batch_1..5``, ``test_batch``, ``batches.meta`` of
``cifar-10-batches-py``) are Python 2 pickles of a dict of bytes keys holding
lists of ints and bytes and one numpy uint8 array.  Unpickling calls whatever
global a pickle names, so a crafted file runs code; this reader admits only the
three globals numpy's own array pickles use (``_reconstruct``, ``ndarray``,
``dtype``) and refuses any other, before it is called.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

try:  # numpy >= 2 moved the module; old pickles (the official files) still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy < 2
    from numpy.core.multiarray import _reconstruct

#: Every global the official files (and numpy's protocol-2 array pickles) name, and what it resolves to.
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class RefusedPickle(ValueError):
    """The file names a global the official CIFAR-10 files do not hold."""


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(f"it names {module}.{name}, which the official CIFAR-10 files do not hold") from None

    def persistent_load(self, pid):
        raise RefusedPickle("it holds a persistent reference, which the official CIFAR-10 files do not")


def load_batch(data: bytes) -> dict:
    """Unpickle one batch (``encoding="bytes"``, as the Python 2 files need) admitting only ``ALLOWED``."""
    return _Restricted(io.BytesIO(data), encoding="bytes").load()
