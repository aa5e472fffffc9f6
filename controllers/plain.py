"""Plain-data helpers for controller states (JSON- and pickle-able); no torch, no Ray."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


def pack_rows(rows: list[list[int]], width: int) -> dict[str, Any]:
    """Decision codes of many genotypes as one base64 blob of uint16 (compact in a checkpoint)."""
    array = np.asarray(rows, dtype=np.uint16).reshape(len(rows), width)
    return {"shape": list(array.shape), "base64": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack_rows(blob: dict[str, Any] | None) -> list[list[int]]:
    if not blob:
        return []
    array = np.frombuffer(base64.b64decode(blob["base64"]), dtype=np.uint16).reshape(blob["shape"])
    return array.astype(np.int64).tolist()


def lists_for_tuples(value: object) -> object:
    """Tuples as lists, so settings compare equal after a JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [lists_for_tuples(v) for v in value]
    return value


def copy_plain(value: Any) -> Any:
    """A deep copy of plain data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: copy_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_plain(v) for v in value]
    return value
