"""Datasets chosen by config, a seeded held-out split, a per-process cache: the data of every training.

MnasNet (Tan et al. 2019, arXiv:1807.11626, section 5) trains every candidate
on a proxy task and measures its accuracy on 50K images held out of the
ImageNet TRAINING set; the test (validation) split is kept for final reports.
``load_data`` does the same for any dataset: it draws a seeded, class-stratified
held-out part of the training split and (optionally) a training subset of at
most ``train_limit`` images from the rest.

Kinds (``DataConfig.kind``):

* ``builtin``: real CIFAR-10 images shipped with the package, chosen by ``builtin``:
  ``tiny`` (``nas/builtin/cifar10_tiny.npz``, 2,000 train + 500 test, raw pixels) or
  ``small`` (``nas/builtin/cifar10_small.npz``, 10,000 train + 2,000 test stored as
  JPEG bytes in flat uint8 arrays, 3.8 MB, decoded with Pillow on load; see
  ``scripts/build_builtin_small.py``).
* ``npz``: a ``.npz`` file with ``x_train``/``x_test`` (N, H, W, 3) uint8 RGB and
  ``y_train``/``y_test`` (N,) integer labels (+ optional ``classes``), the format
  of ``shared/data/cifar10_*.npz``.
* ``cifar10``: the official python release folder ``cifar-10-batches-py``
  (``data_batch_1..5``, ``test_batch``, ``batches.meta``), read from disk.
* ``imagefolder``: ImageNet-style class folders (see ``nas.data.imagefolder``),
  decoded with Pillow by ``workers`` threads and resized to ``image_size``.

Images stay uint8 HWC in memory; the trainer moves them to its device once and
augments and normalises there.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from .source import Source

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "builtin"
BUILTIN_PATH = BUILTIN_DIR / "cifar10_tiny.npz"
#: The built-in datasets (``DataConfig.builtin``): name -> file in ``nas/builtin``.
BUILTINS = {"tiny": BUILTIN_PATH, "small": BUILTIN_DIR / "cifar10_small.npz"}
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


@dataclass(frozen=True)
class DataConfig:
    """YAML section ``data``: which dataset, how much of it, and the held-out split."""

    kind: Literal["builtin", "npz", "cifar10", "imagefolder"] = "builtin"
    #: npz file, cifar-10-batches-py folder or class-folder root; unused (null) for builtin.
    path: str | None = None
    #: Held-out part of the TRAIN split that accuracy is measured on: a fraction in (0, 1) or a count.
    holdout: float = 0.2
    #: Train on at most this many of the remaining training images (null = all of them).
    train_limit: int | None = None
    #: Seed of the split (which images are held out, which form the training subset).
    seed: int = 0
    #: imagefolder only: decoding threads.
    workers: int = 4
    #: imagefolder only: images are resized (shorter side) and centre-cropped to this size.
    image_size: int = 32
    #: imagefolder only: folder for a cache of decoded images (null = no cache).
    cache_dir: str | None = None
    #: builtin only: ``tiny`` (2,000 train + 500 test) or ``small`` (10,000 train + 2,000 test).
    builtin: Literal["tiny", "small"] = "tiny"

    def __post_init__(self) -> None:
        if self.kind not in ("builtin", "npz", "cifar10", "imagefolder"):
            raise ValueError(f"data.kind must be builtin, npz, cifar10 or imagefolder, got {self.kind!r}")
        if self.kind == "builtin" and self.path is not None:
            raise ValueError(f"data.path is not used with kind 'builtin' (got {self.path!r}); "
                             "use kind 'npz' to read your own file")
        if self.kind != "builtin" and not self.path:
            raise ValueError(f"data.path is required with kind {self.kind!r}; name the "
                             + {"npz": ".npz file", "cifar10": "cifar-10-batches-py folder",
                                "imagefolder": "folder of class folders"}[self.kind])
        h = self.holdout
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not h > 0 or not math.isfinite(h) \
                or (h >= 1 and float(h) != int(h)):
            raise ValueError(f"data.holdout must be a fraction in (0, 1) or a whole count >= 1, got {h!r}; "
                             "e.g. 0.2 or 2000")
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"data.train_limit must be >= 1 or null (all images), got {self.train_limit!r}")
        if self.builtin not in BUILTINS:
            raise ValueError(f"data.builtin must be one of {', '.join(BUILTINS)}, got {self.builtin!r}")
        if self.kind != "builtin" and self.builtin != "tiny":
            raise ValueError(f"data.builtin is only used with kind 'builtin' (got kind {self.kind!r})")
        if self.workers < 1:
            raise ValueError(f"data.workers must be >= 1, got {self.workers!r}")
        if self.image_size < 8:
            raise ValueError(f"data.image_size must be >= 8 pixels, got {self.image_size!r}")


@dataclass(eq=False)
class Dataset:
    """A loaded dataset: uint8 (N, H, W, 3) images and int64 labels for train, holdout and test.

    ``mean``/``std`` are per-channel statistics of the training subset in [0, 1] units.
    ``device_cache`` is where the trainer keeps its on-device copies (one upload per process).
    """

    name: str
    classes: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    y_test: np.ndarray
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    #: Returns the test images; called once, on first use of ``x_test`` (final reports only).
    fetch_test: Callable[[], np.ndarray] = field(repr=False, default=lambda: np.empty((0, 1, 1, 3), np.uint8))
    device_cache: dict = field(default_factory=dict, repr=False)

    @property
    def x_test(self) -> np.ndarray:
        if "x_test" not in self.__dict__:
            self.__dict__["x_test"] = self.fetch_test()
        return self.__dict__["x_test"]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of ``train``, ``holdout`` or ``test``."""
        if name not in ("train", "holdout", "test"):
            raise ValueError(f"split must be train, holdout or test, got {name!r}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "classes": self.num_classes, "image_size": self.image_size,
                "train": len(self.y_train), "holdout": len(self.y_holdout), "test": len(self.y_test)}


@lru_cache(maxsize=8)
def load_data(cfg: DataConfig) -> Dataset:
    """Load, split and cache a dataset: the same ``cfg`` returns the same object without reloading."""
    start = time.perf_counter()
    source = _read(cfg)
    holdout_idx, train_idx = split_indices(source.y_train, cfg.holdout, cfg.train_limit, cfg.seed,
                                           where=f"data ({cfg.kind} {cfg.path or BUILTINS[cfg.builtin].name})")
    x_holdout = source.fetch_train(holdout_idx)
    x_train = source.fetch_train(train_idx)
    mean, std = channel_stats(x_train)
    data = Dataset(source.name, source.classes, x_train, source.y_train[train_idx], x_holdout,
                     source.y_train[holdout_idx], source.y_test, mean, std, source.fetch_test)
    log.info("data %s: %d train / %d held out / %d test images of %dx%d, %d classes (%.1fs)", data.name,
             len(data.y_train), len(data.y_holdout), len(data.y_test), data.image_size, data.image_size,
             data.num_classes, time.perf_counter() - start)
    return data


def split_indices(labels: np.ndarray, holdout: float, train_limit: int | None, seed: int,
                  where: str = "data") -> tuple[np.ndarray, np.ndarray]:
    """Seeded, class-stratified (held-out, training) index arrays over ``labels``; disjoint.

    Images are shuffled with ``numpy.random.default_rng(seed)``; each gets its
    quantile position inside its class, and the split walks the images in that
    order, so both the held-out part and any training subset keep the class
    proportions.  The held-out part does not depend on ``train_limit``.
    """
    n = len(labels)
    count = int(round(holdout * n)) if holdout < 1 else int(holdout)
    if not 1 <= count < n:
        raise ValueError(f"{where}: data.holdout={holdout!r} holds out {count} of {n} training images; "
                         "it must leave at least one image on each side")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    shuffled = labels[perm]
    position = np.empty(n, dtype=np.float64)
    for c in np.unique(shuffled):
        members = np.flatnonzero(shuffled == c)
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = perm[np.argsort(position, kind="stable")]
    holdout_idx, train_idx = order[:count], order[count:]
    if train_limit is not None:
        train_idx = train_idx[:train_limit]
    return np.sort(holdout_idx), np.sort(train_idx)


def channel_stats(x: np.ndarray, max_images: int = 20000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units (of at most ``max_images`` evenly spaced images)."""
    step = max(1, len(x) // max_images)
    sample = x[::step].reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    std = np.maximum(sample.std(0), 1e-3)
    return tuple(float(v) for v in sample.mean(0)), tuple(float(v) for v in std)


# -- readers --------------------------------------------------------------------------------------
def _read(cfg: DataConfig) -> Source:
    if cfg.kind == "builtin":
        path = BUILTINS[cfg.builtin]
        return _from_arrays(f"builtin:{path.stem}", _read_npz(path), str(path))
    path = Path(cfg.path).expanduser()
    if cfg.kind == "npz":
        return _from_arrays(path.stem, _read_npz(path), str(path))
    if cfg.kind == "cifar10":
        return _from_arrays("cifar10", _read_cifar10(path), str(path))
    from .imagefolder import read_imagefolder

    return read_imagefolder(path, cfg.image_size, cfg.workers, cfg.cache_dir)


def _from_arrays(name: str, arrays: dict[str, np.ndarray], where: str) -> Source:
    x_train, y_train = _check_pair(arrays["x_train"], arrays["y_train"], where, "train")
    x_test, y_test = _check_pair(arrays["x_test"], arrays["y_test"], where, "test", allow_empty=True)
    if len(x_test) and x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"{where}: x_test images are {x_test.shape[1:]} but x_train images are "
                         f"{x_train.shape[1:]}; both splits must have the same image shape")
    num_classes = int(max(y_train.max(), y_test.max() if len(y_test) else 0)) + 1
    classes = arrays.get("classes")
    if classes is None or len(classes) == 0:
        names = tuple(str(i) for i in range(num_classes))
    else:
        names = tuple(str(c) for c in classes)
        if len(names) < num_classes:
            raise ValueError(f"{where}: 'classes' names {len(names)} classes but labels go up to "
                             f"{num_classes - 1}; list one name per class")
    return Source(name, names, y_train, lambda idx: np.ascontiguousarray(x_train[idx]), y_test,
                   lambda: x_test)


def _check_pair(x: np.ndarray, y: np.ndarray, where: str, split: str,
                allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ValueError(f"{where}: x_{split} must be uint8 images of shape (N, H, W, 3) (HWC RGB), got "
                         f"{x.dtype} {x.shape}")
    if x.shape[1] != x.shape[2] and len(x):
        raise ValueError(f"{where}: x_{split} images must be square, got {x.shape[1]}x{x.shape[2]}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{where}: y_{split} must be integer labels of shape ({len(x)},), got {y.dtype} {y.shape}")
    if not len(x) and not allow_empty:
        raise ValueError(f"{where}: x_{split} is empty; training needs images")
    if len(y) and y.min() < 0:
        raise ValueError(f"{where}: y_{split} has negative labels (min {y.min()}); labels must be 0..C-1")
    return x, y.astype(np.int64)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        raise IsADirectoryError(f"data.path {str(path)!r} is a folder; data.kind npz needs the .npz file (or set "
                                "data.kind to cifar10 or imagefolder for a folder)")
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist; expected an .npz with x_train, "
                                "y_train, x_test, y_test (uint8 HWC RGB images, integer labels)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as err:  # zipfile/pickle/format errors all mean "not a valid npz"
        why = "it holds pickled objects, which are never loaded" if "pickle" in str(err) else \
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"data file {str(path)!r} is not a readable .npz archive ({why}); expected a "
                         "np.savez file with arrays x_train, y_train, x_test, y_test") from None
    if "jpeg_prefix" in arrays:
        arrays = _decode_jpeg_arrays(arrays, path)
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise ValueError(f"data file {str(path)!r} lacks {', '.join(missing)}; it has "
                         f"{', '.join(arrays) or 'no arrays'} (expected x_train, y_train, x_test, y_test)")
    return arrays


def _decode_jpeg_arrays(arrays: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """``x_<split>_jpeg`` (flat uint8: every image's JPEG bytes after the shared ``jpeg_prefix``) and
    ``x_<split>_offsets`` (N + 1) decoded with Pillow into (N, H, W, 3) uint8 ``x_<split>``."""
    import io

    from PIL import Image

    prefix = arrays.pop("jpeg_prefix").tobytes()
    for split in ("train", "test"):
        blob, offsets = arrays.pop(f"x_{split}_jpeg", None), arrays.pop(f"x_{split}_offsets", None)
        if blob is None or offsets is None or offsets.ndim != 1 or len(offsets) < 1 or blob.dtype != np.uint8:
            raise ValueError(f"data file {str(path)!r}: a JPEG npz needs uint8 x_{split}_jpeg and "
                             f"x_{split}_offsets (N + 1 integers)")
        data = blob.tobytes()
        try:
            images = [np.asarray(Image.open(io.BytesIO(prefix + data[a:b])).convert("RGB"))
                      for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        except Exception as err:  # noqa: BLE001 - any decoder error means a damaged file
            raise ValueError(f"data file {str(path)!r}: x_{split} JPEG bytes do not decode ({err})") from None
        arrays[f"x_{split}"] = np.stack(images) if images else np.empty((0, 32, 32, 3), np.uint8)
    return arrays


def _read_cifar10(path: Path) -> dict[str, np.ndarray]:
    """The official CIFAR-10 python release (Krizhevsky 2009): pickled 10000x3072 uint8 batches, CHW rows.

    ``path`` is the ``cifar-10-batches-py`` folder or a folder that contains it.
    The batches are Python pickles, read by a restricted unpickler (``nas.data.cifar_pickle``): a file
    naming anything the official ones do not is refused, never executed.
    """
    from .cifar_pickle import RefusedPickle, load_batch

    folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {str(path)!r} does not exist; expected the extracted "
                                "cifar-10-batches-py folder (data_batch_1..5, test_batch, batches.meta)")
    missing = [n for n in (*_CIFAR_BATCHES, "test_batch") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {str(folder)!r} lacks {', '.join(missing)}; expected the "
                                "python release (data_batch_1..5, test_batch, batches.meta)")

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        file = folder / name
        try:
            entry = load_batch(file.read_bytes())
            data = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            labels = np.asarray(entry[b"labels"], dtype=np.int64)
        except RefusedPickle as err:
            raise ValueError(f"CIFAR-10 batch {str(file)!r} refused: {err}; use the official "
                             "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html") from None
        except Exception as err:
            raise ValueError(f"CIFAR-10 batch {str(file)!r} is malformed ({type(err).__name__}: {err}); "
                             "expected a pickled dict with b'data' (10000x3072 uint8) and b'labels'") from None
        return data, labels

    train = [batch(n) for n in _CIFAR_BATCHES]
    x_test, y_test = batch("test_batch")
    arrays = {"x_train": np.concatenate([b[0] for b in train]), "y_train": np.concatenate([b[1] for b in train]),
              "x_test": np.ascontiguousarray(x_test), "y_test": y_test}
    meta = folder / "batches.meta"
    if meta.is_file():
        try:
            names = load_batch(meta.read_bytes()).get(b"label_names", [])
        except RefusedPickle as err:
            raise ValueError(f"CIFAR-10 file {str(meta)!r} refused: {err}; use the official "
                             "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html") from None
        arrays["classes"] = np.asarray([n.decode() if isinstance(n, bytes) else str(n) for n in names])
    return arrays
