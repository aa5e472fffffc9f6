"""A dataset before the split, as every reader returns it (``nas.data.datasets``, ``nas.data.imagefolder``)."""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np


class Source(NamedTuple):
    """Labels known, training images fetched by index (lazily for files), test images on first use."""

    name: str
    classes: tuple[str, ...]
    y_train: np.ndarray
    fetch_train: Callable[[np.ndarray], np.ndarray]
    y_test: np.ndarray
    fetch_test: Callable[[], np.ndarray]
