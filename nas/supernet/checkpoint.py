"""The supernet checkpoint: one file, written atomically after every epoch, read without running code.

The file holds tensors and plain data only (``torch.save`` of dicts, lists, strings and numbers)
and is read with ``torch.load(weights_only=True)``: no pickled object of a data file is ever
executed.  It is written to ``<name>.tmp`` and renamed over the old one, so a process killed
while writing (SIGKILL included) leaves the previous epoch's checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from efficientnet.supernet import Supernet
from search_spaces import get_space

#: 2: the supernet of any declared space (weight groups per op, ``efficientnet.supernet_ops``).
FORMAT = 2


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    meta: dict[str, Any]) -> None:
    """Atomically write model state, optimizer state and ``meta`` (plain data) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "model": state, "meta": meta,
               "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload; a missing or foreign file is a one-line error naming the fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"supernet checkpoint {str(path)!r} does not exist; train one with "
                                "`nas supernet train CONFIG` (it is <output.dir>/<output.name>/supernet.pt)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{str(path)!r} is not a readable supernet checkpoint ({type(err).__name__}); "
                         "pass the supernet.pt a `nas supernet train` run wrote") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "meta" not in payload:
        raise ValueError(f"{str(path)!r} is not a supernet checkpoint of format {FORMAT}; pass the supernet.pt "
                         "a `nas supernet train` run wrote")
    return payload


def build_supernet(meta: dict[str, Any]) -> Supernet:
    """An untrained supernet of the space and size recorded in ``meta``."""
    return Supernet(get_space(meta["space"]), **meta["arch"])


def load_supernet(path: str | Path, device: str | torch.device = "cpu") -> tuple[Supernet, dict[str, Any]]:
    """``(supernet in eval mode on device, meta)`` from a checkpoint.

    ``meta``: ``space``, ``arch`` (the Supernet keyword arguments: width, depth, resolution,
    stem_stride, num_classes, ...), ``data``/``proxy``/``supernet`` (the config sections it was
    trained with, as dicts), ``epoch`` (last finished), ``epochs`` (planned), ``history``.
    """
    payload = read_checkpoint(path)
    meta = payload["meta"]
    net = build_supernet(meta)
    net.load_state_dict(payload["model"])
    return net.to(device).eval(), meta
