"""ImageNet-style class folders for the proxy task, decoded with Pillow.

Layout (as torchvision's ``ImageFolder``): ``ROOT/<class>/<image>`` or, with
separate splits, ``ROOT/train/<class>/<image>`` plus ``ROOT/val/<class>/...``
(or ``ROOT/test/...``) for the final-report split.  Classes are the sorted
folder names of the training split.

MnasNet's proxy is ImageNet itself (arXiv:1807.11626, section 5); a
downsampled ImageNet (Chrabaszcz et al. 2017, arXiv:1707.08819: 32x32 and
64x64 variants) keeps the signal at a fraction of the cost.  Each image is
decoded (JPEG draft mode first, so large photos decode at a reduced scale),
its shorter side resized to ``image_size`` with a box/bicubic filter and the
centre cropped square.  Only the images the split keeps are decoded (the test
split on first use), by
``workers`` threads (Pillow releases the GIL while decoding and resizing).
With ``cache_dir`` set, the decoded arrays are stored as an .npz named by a
hash of the root, the size and the selected files, and reused.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..files import atomic_open
from .source import Source

log = logging.getLogger(__name__)

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise ValueError("data.kind 'imagefolder' needs Pillow to decode images: pip install pillow") from None
    return Image


def list_classes(folder: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """(class names, image files, labels) of a folder of class folders, in sorted order."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"image folder {str(folder)!r} has no class subfolders; expected "
                         "ROOT/<class>/<image> or ROOT/train/<class>/<image>")
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())
        files.extend(found)
        labels.extend([label] * len(found))
    if not files:
        raise ValueError(f"image folder {str(folder)!r} has class folders but no images "
                         f"(looked for {', '.join(EXTENSIONS)})")
    return classes, files, np.asarray(labels, dtype=np.int64)


def decode(file: Path, size: int) -> np.ndarray:
    """One image as (size, size, 3) uint8 RGB: shorter side resized to ``size``, centre crop."""
    Image = _pil()
    try:
        with Image.open(file) as img:
            img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at the smallest scale >= 2x the target
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            img = img.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=2.0)
            left, top = (nw - size) // 2, (nh - size) // 2
            img = img.crop((left, top, left + size, top + size))
            return np.asarray(img, dtype=np.uint8)
    except Exception as err:
        raise ValueError(f"image {str(file)!r} could not be decoded ({type(err).__name__}: {err}); "
                         "remove it or replace it with a valid image") from None


def decode_many(files: list[Path], size: int, workers: int) -> np.ndarray:
    out = np.empty((len(files), size, size, 3), dtype=np.uint8)
    if not files:
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr in enumerate(pool.map(lambda f: decode(f, size), files, chunksize=64)):
            out[i] = arr
    return out


def _cached(cache_dir: str | None, root: Path, size: int, files: list[Path], workers: int) -> np.ndarray:
    if cache_dir is None:
        return decode_many(files, size, workers)
    digest = hashlib.sha1(f"{root.resolve()}|{size}".encode())
    for f in files:
        digest.update(str(f.relative_to(root)).encode())
        digest.update(b"\0")
    path = Path(cache_dir).expanduser() / f"imagefolder-{digest.hexdigest()[:16]}.npy"
    if path.is_file():
        arr = np.load(path, allow_pickle=False)
        if arr.shape == (len(files), size, size, 3) and arr.dtype == np.uint8:
            log.info("decoded images from cache %s", path)
            return arr
    arr = decode_many(files, size, workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, binary=True) as f:
        np.save(f, arr)
    return arr


def read_imagefolder(path: Path, image_size: int, workers: int, cache_dir: str | None) -> Source:
    """The lazily decoded dataset under ``path`` (see the module docstring for the layout)."""
    if not path.is_dir():
        raise FileNotFoundError(f"image folder {str(path)!r} does not exist; expected ROOT/<class>/<image> "
                                "or ROOT/train/<class>/<image> (+ ROOT/val/<class>/<image>)")
    _pil()
    train_dir = path / "train" if (path / "train").is_dir() else path
    classes, files, labels = list_classes(train_dir)
    test_dir = next((path / n for n in ("val", "test") if (path / n).is_dir()), None) if train_dir != path else None
    size = image_size
    if test_dir is not None:
        test_classes, test_files, test_labels = list_classes(test_dir)
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise ValueError(f"image folder {str(test_dir)!r} has classes not in {str(train_dir)!r}: "
                             f"{', '.join(unknown[:5])}; both splits need the same class folders")
        remap = np.asarray([classes.index(c) for c in test_classes], dtype=np.int64)
        y_test = remap[test_labels]
    else:
        test_files, y_test = [], np.empty((0,), np.int64)

    def fetch(idx: np.ndarray) -> np.ndarray:
        return _cached(cache_dir, path, size, [files[i] for i in idx], workers)

    log.info("image folder %s: %d training images in %d classes, %d test images", path, len(files),
             len(classes), len(y_test))
    return Source(f"imagefolder:{path.name}", tuple(classes), labels, fetch, y_test,
                  lambda: _cached(cache_dir, path, size, test_files, workers))
