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

from efficientnet.fewshot import SplitSupernet, from_record
from efficientnet.supernet import Supernet

from ..experiment.space import resolve_space
from ..files import path_problem

#: 2: the supernet of any declared space (weight groups per op, ``efficientnet.supernet_ops``).
FORMAT = 2
#: What a checkpoint's ``meta`` must hold (``nas.supernet.train._meta`` writes it).
META_KEYS = ("space", "arch", "data", "proxy", "supernet", "epoch", "epochs", "history")
_FIX = "pass the supernet.pt a `nas supernet train` run wrote"


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    meta: dict[str, Any]) -> None:
    """Atomically write model state, optimizer state and ``meta`` (plain data) to ``path``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    write_payload(path, {"format": FORMAT, "model": state, "meta": meta,
                         "optimizer": _to_cpu(optimizer.state_dict()) if optimizer is not None else None})


def write_payload(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write a checkpoint payload (``save_checkpoint``'s, or one read and amended)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    """The checkpoint's payload, its metadata checked; what is wrong with the path or file is one line.

    ``FileNotFoundError`` names the path's problem (does not exist, a folder, a symlink loop);
    ``ValueError`` says why it is not a supernet checkpoint (not readable by ``torch.load``, another
    format, missing metadata keys).  Tensor shapes are checked by :func:`check_shapes`.
    """
    path = Path(path).expanduser()
    problem = path_problem(path, "file")
    if problem is not None:
        raise FileNotFoundError(f"supernet checkpoint {str(path)!r} {problem}; train one with `nas supernet train "
                                "CONFIG` (it is <output.dir>/<output.name>/supernet.pt)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{str(path)!r} is not a supernet checkpoint (torch.load failed: {type(err).__name__}); "
                         f"{_FIX}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("meta"), dict) \
            or not isinstance(payload.get("model"), dict):
        raise ValueError(f"{str(path)!r} is not a supernet checkpoint of format {FORMAT}; {_FIX}")
    missing = [k for k in META_KEYS if k not in payload["meta"]]
    if missing:
        raise ValueError(f"{str(path)!r} is not a complete supernet checkpoint: its metadata lacks "
                         f"{', '.join(missing)}; {_FIX}")
    if not isinstance(payload["meta"]["arch"], dict):
        raise ValueError(f"{str(path)!r}: metadata 'arch' is not a mapping of the supernet's sizes; {_FIX}")
    return payload


def build_supernet(meta: dict[str, Any]) -> Supernet | SplitSupernet:
    """An untrained supernet of the space and size recorded in ``meta``; split into sub-supernets when its
    ``split`` record says so (few-shot training, ``efficientnet.fewshot``; absent in one-shot checkpoints)."""
    return from_record(resolve_space(meta["space"], "supernet checkpoint space"), meta["arch"], meta.get("split"))


def check_shapes(payload: dict[str, Any], path: str | Path) -> Supernet | SplitSupernet:
    """The supernet the metadata describes, after checking that every tensor of the file fits it.

    A file whose tensors do not match the recorded sizes (another width, a renamed layer, a truncated
    state) is a ValueError naming the first tensor that does not fit -- before any worker loads it.
    """
    try:
        net = build_supernet(payload["meta"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{str(path)!r}: its metadata does not describe a supernet ({str(err).splitlines()[0]}); "
                         f"{_FIX}") from None
    want = net.state_dict()
    got = payload["model"]
    for name, tensor in want.items():
        if name not in got:
            raise ValueError(f"{str(path)!r}: tensor {name!r} of the recorded supernet is missing from the file; {_FIX}")
        shape = tuple(getattr(got[name], "shape", ()))
        if shape != tuple(tensor.shape):
            raise ValueError(f"{str(path)!r}: tensor {name!r} has shape {list(shape)} but the recorded sizes "
                             f"({_sizes(payload['meta'])}) give {list(tensor.shape)}; {_FIX}")
    extra = [k for k in got if k not in want]
    if extra:
        raise ValueError(f"{str(path)!r}: tensor {extra[0]!r} is not part of the recorded supernet; {_FIX}")
    return net


def _sizes(meta: dict[str, Any]) -> str:
    arch = meta.get("arch", {})
    return ", ".join(f"{k} {arch[k]}" for k in ("width", "depth", "resolution", "num_classes") if k in arch)


def load_supernet(path: str | Path, device: str | torch.device = "cpu") -> tuple[Supernet | SplitSupernet,
                                                                                dict[str, Any]]:
    """``(supernet in eval mode on device, meta)`` from a checkpoint.

    ``meta``: ``space``, ``arch`` (the Supernet keyword arguments: width, depth, resolution,
    stem_stride, num_classes, ...), ``data``/``proxy``/``supernet`` (the config sections it was
    trained with, as dicts), ``epoch`` (last finished), ``epochs`` (planned), ``history``, and, once a
    few-shot run has split, ``split`` (``SplitSupernet.record``: the net is then a ``SplitSupernet``).
    """
    payload = read_checkpoint(path)
    net = check_shapes(payload, path)
    net.load_state_dict(payload["model"])
    return net.to(device).eval(), payload["meta"]
