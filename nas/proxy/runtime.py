"""The torch-side choices of a proxy recipe: device, bf16 autocast, memory layout, threads, GPU sharing.

Shared by everything that trains or scores at the proxy size (proxy trials, the supernet, ``nas train``'s
data pipeline); :class:`~nas.experiment.proxy.ProxyConfig` itself imports no torch.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..experiment.proxy import ProxyConfig


def trial_threads(proxy: ProxyConfig, cpus: float = 1.0) -> int:
    """The intra-op threads a trial trains with: ``proxy.threads``, else its CPUs (at least 1)."""
    return proxy.threads if proxy.threads is not None else max(1, int(cpus))


def set_trial_threads(proxy: ProxyConfig, cpus: float = 1.0) -> int:
    """Set this process's torch threads for training a trial (``trial_threads``); returns the number."""
    threads = trial_threads(proxy, cpus)
    torch.set_num_threads(threads)
    return threads


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; an unavailable cuda is a ValueError naming the fix."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: this machine has no CUDA device; use device: auto or cpu")
    return device


def _flag(value: str, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def use_amp(cfg: ProxyConfig, device: torch.device) -> bool:
    """Whether the proxy trains under bf16 autocast (see ``ProxyConfig.amp``)."""
    return _flag(cfg.amp, auto=device.type == "cuda")


def use_channels_last(cfg: ProxyConfig, device: torch.device) -> bool:
    """Whether the proxy trains in channels_last (see ``ProxyConfig.channels_last``)."""
    return _flag(cfg.channels_last, auto=device.type != "cuda" or cfg.resolution > 64)


def for_gpu_share(cfg: ProxyConfig, gpus_per_trial: float) -> ProxyConfig:
    """``cfg`` for a trial that gets ``gpus_per_trial`` of a GPU: a shared GPU gets the packing layout.

    ``channels_last: auto`` becomes ``on`` when the trial shares its GPU (0 < share < 1): its
    kernels leave room for the other trials, NCHW ones do not (numbers on ``ProxyConfig.channels_last``).
    """
    if cfg.channels_last == "auto" and 0 < gpus_per_trial < 1:
        return replace(cfg, channels_last="on")
    return cfg
