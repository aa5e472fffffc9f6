"""Build ``nas/builtin/cifar10_small.npz``: 12,000 real CIFAR-10 images as JPEG bytes in flat uint8 arrays.

Source: ``../shared/data/cifar10_small.npz`` (10,000 train + 2,000 test, 1,000/200 per class; every image
was a JPEG of quality 75, 4:2:0 in the public copy it came from).  Re-encoding at that quality gives the
same pixels back within ~0.2 grey levels (the blocks are already quantised).  All 32x32 JPEGs of one
quality share their headers (JFIF, quantisation and Huffman tables, frame and scan headers), so the file
stores that common prefix once (``jpeg_prefix``) and per image only the rest, concatenated:
``x_train_jpeg`` (flat uint8) with ``x_train_offsets`` (N + 1 int64), the same for ``x_test``; labels,
class names and the source indices as plain arrays.  No object arrays: it loads with
``np.load(allow_pickle=False)``; ``nas.data`` decodes it with Pillow.

    python scripts/build_builtin_small.py [SOURCE.npz] [OUT.npz]
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

QUALITY = 75


def encode(images: np.ndarray) -> list[bytes]:
    out = []
    for im in images:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=QUALITY, subsampling="4:2:0")
        out.append(buf.getvalue())
    return out


def common_prefix(blobs: list[bytes]) -> bytes:
    prefix = os.path.commonprefix(blobs)
    # Cut at the last marker boundary before the entropy-coded data: the scan header (FFDA) ends the headers.
    sos = prefix.rfind(b"\xff\xda")
    if sos < 0:
        raise SystemExit("no common scan header: the encodings do not share their tables")
    length = int.from_bytes(prefix[sos + 2:sos + 4], "big")
    return prefix[:min(len(prefix), sos + 2 + length)]


def main(source: str, out: str) -> None:
    with np.load(source, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    train, test = encode(data["x_train"]), encode(data["x_test"])
    prefix = common_prefix(train + test)
    arrays = {"jpeg_prefix": np.frombuffer(prefix, np.uint8)}
    for split, blobs in (("train", train), ("test", test)):
        tails = [b[len(prefix):] for b in blobs]
        arrays[f"x_{split}_jpeg"] = np.frombuffer(b"".join(tails), np.uint8)
        arrays[f"x_{split}_offsets"] = np.concatenate([[0], np.cumsum([len(t) for t in tails])]).astype(np.int64)
        arrays[f"y_{split}"] = data[f"y_{split}"].astype(np.int64)
        if f"{split}_idx" in data:
            arrays[f"{split}_idx"] = data[f"{split}_idx"].astype(np.int32)
    arrays["classes"] = data["classes"].astype("U10")
    np.savez(out, **arrays)
    print(f"{out}: {Path(out).stat().st_size / 1e6:.2f} MB, prefix {len(prefix)} bytes, "
          f"{len(train)} train + {len(test)} test images")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    main(sys.argv[1] if len(sys.argv) > 1 else str(here.parent / "shared" / "data" / "cifar10_small.npz"),
         sys.argv[2] if len(sys.argv) > 2 else str(here / "nas" / "builtin" / "cifar10_small.npz"))
