"""Scoring paths of a trained supernet: BN recalibration on fixed training batches, held-out accuracy.

SPOS (Guo et al. 2020, arXiv:1904.00420, section 3.3): a path scored with inherited weights
needs its own BatchNorm statistics, recomputed on training batches; the weights are not
touched.  :class:`PathScorer` holds what scoring needs on the device -- the fixed calibration
batches (seeded, un-augmented training images, the same for every path) and the held-out
split -- and :class:`SupernetScorer` adds what a scorer of paths needs: built once per worker
(data and weights loaded once), ``score(genotype) -> Score`` never raises for a bad candidate.  The
search's evaluator (``nas.evaluators.supernet``) adds cost and reward.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from efficientnet import count_spec
from efficientnet.supernet import Supernet
from search_spaces import Genotype

from ..config import from_dict
from ..data import DataConfig, Dataset, load_data
from ..experiment.proxy import ProxyConfig
from ..experiment.supernet import SupernetConfig
from ..proxy.ops import Batcher, DeviceSplit, device_split, is_out_of_memory
from ..proxy.runtime import resolve_device, use_amp, use_channels_last
from ..proxy.train import evaluate
from .checkpoint import load_supernet
from .ensemble import EnsembleScorer, check_members
from .prefix import score_paths

log = logging.getLogger(__name__)

#: held-out splits up to this many input values (float32: 256 MiB) stay converted on the device
_RESIDENT_EVAL_VALUES = 64 * 2**20


@dataclass
class Score:
    """A path's score: ``status`` ``ok`` (``accuracy`` is its held-out accuracy) or ``failed`` (``reason``)."""

    status: str
    accuracy: float = 0.0
    reason: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Path(nn.Module):
    """A supernet path as a plain module (what ``nas.proxy.evaluate`` takes)."""

    def __init__(self, net: Supernet, genotype: Genotype) -> None:
        super().__init__()
        self.net = net
        self.genotype = genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.genotype)


def calibration_indices(n: int, batches: int, batch_size: int, seed: int) -> np.ndarray:
    """Which training images recalibrate BN: the first ``batches * batch_size`` of a seeded permutation."""
    order = np.random.default_rng([seed, 0xCA11B]).permutation(n)
    return order[:min(n, batches * batch_size)]


class PathScorer:
    """Recalibrate-then-evaluate for any path of ``net``, with the calibration batches resident on the device."""

    def __init__(self, net: Supernet, data: Dataset, proxy: ProxyConfig, calib_batches: int,
                 calib_batch_size: int, seed: int, device: torch.device) -> None:
        self.net = net
        self.device = device
        channels_last = use_channels_last(proxy, device)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp(proxy, device) else nullcontext()
        self.batcher = Batcher(data, device, proxy.resolution, 0, False, channels_last)
        train = device_split(data, "train", device)
        idx = torch.from_numpy(calibration_indices(len(train.y), calib_batches, calib_batch_size, seed))
        calib = DeviceSplit(train.x[idx.to(train.x.device)], train.y[idx.to(train.y.device)])
        size = len(calib.y)
        step = min(calib_batch_size, size)
        # Whole batches only (a last small batch would give noisy statistics the same weight).
        self.calib = [self.batcher.eval_batch(calib, s, s + step) for s in range(0, size - step + 1, step)]
        self.split = device_split(data, proxy.evaluate_on, device)
        self.eval_batch_size = proxy.eval_batch_size
        # The held-out windows of ``nas.proxy.evaluate`` (every batch the same shape; a short last batch
        # is the last full window, counting only its new rows), converted once when they fit.
        n, size = len(self.split.y), proxy.resolution
        self._windows = self._eval_windows() if n * 3 * size * size <= _RESIDENT_EVAL_VALUES else None

    def _eval_windows(self):
        n, bs = len(self.split.y), self.eval_batch_size
        out = []
        for start in range(0, n, bs):
            stop = min(start + bs, n)
            first = max(0, stop - bs)  # == start except for a short last batch
            out.append((self.batcher.eval_batch(self.split, first, stop), start - first, self.split.y[start:stop]))
        return out

    @property
    def calib_images(self) -> int:
        return sum(len(b) for b in self.calib)

    def __call__(self, genotype: Genotype) -> tuple[float, dict[str, float]]:
        start = time.perf_counter()
        with self.autocast:
            self.net.recalibrate(genotype, self.calib)
        mid = time.perf_counter()
        if self._windows is None:  # a held-out split too large to keep converted: batches made on the fly
            accuracy = evaluate(_Path(self.net, genotype), self.batcher, self.split, self.eval_batch_size,
                                self.autocast)
        else:  # the same computation as ``nas.proxy.evaluate`` on the resident windows
            self.net.eval()
            correct = torch.zeros((), dtype=torch.int64, device=self.split.y.device)
            with torch.inference_mode(), self.autocast:
                for x, skip, y in self._windows:
                    correct += (self.net(x, genotype)[skip:].argmax(1) == y).sum()
            accuracy = float(correct.item()) / len(self.split.y)
        end = time.perf_counter()
        return accuracy, {"calib_s": mid - start, "eval_s": end - mid}


def member_scorer(net: Supernet, meta: dict[str, Any], data: Dataset, calib_batches: int | None,
                  calib_batch_size: int | None, device: torch.device) -> "SupernetScorer":
    """The scorer of one loaded checkpoint; calibration as its ``supernet`` section says unless given."""
    proxy = from_dict(ProxyConfig, meta["proxy"], "checkpoint proxy")
    recipe = from_dict(SupernetConfig, meta["supernet"], "checkpoint supernet")
    return SupernetScorer(net, meta, data, proxy, recipe.calib_batches if calib_batches is None else calib_batches,
                          recipe.calib_batch_size if calib_batch_size is None else calib_batch_size, recipe.seed,
                          device)


class SupernetScorer:
    """Scores genotypes with a trained supernet: inherited weights, BN recalibrated per path.

    Build it once per worker (:meth:`from_checkpoint`); ``score`` and ``score_many`` never raise
    for a bad candidate: a genotype outside the space, or a path that fails (e.g. out of memory),
    gives ``Score(status="failed", reason=...)``.
    """

    def __init__(self, net: Supernet, meta: dict[str, Any], data: Dataset, proxy: ProxyConfig,
                 calib_batches: int, calib_batch_size: int, seed: int, device: torch.device) -> None:
        if data.num_classes != net.options["num_classes"]:
            raise ValueError(f"data {data.name!r} has {data.num_classes} classes but the supernet was trained for "
                             f"{net.options['num_classes']}; evaluate on the data it was trained on")
        layout = torch.channels_last if use_channels_last(proxy, device) else torch.contiguous_format
        self.net = net.to(device, memory_format=layout).eval()  # the layout it trained in (same numbers)
        self.meta = meta
        self.data = data
        self.device = device
        self.scorer = PathScorer(self.net, data, proxy, calib_batches, calib_batch_size, seed, device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, data_cfg: DataConfig | None = None, calib_batches: int | None = None,
                        device: str = "auto", calib_batch_size: int | None = None) -> "SupernetScorer":
        """Load weights and data once.  ``data_cfg=None``: the data the supernet was trained on;
        ``calib_batches``/``calib_batch_size`` default to the checkpoint's ``supernet`` section.  An
        ensemble's member 0 (``supernet.ensemble > 1``) gives an :class:`~nas.supernet.ensemble.EnsembleScorer`
        of all its members (the same ``score``/``score_many``)."""
        dev = resolve_device(device)
        net, meta = load_supernet(path, dev)
        data = load_data(data_cfg if data_cfg is not None else from_dict(DataConfig, meta["data"], "checkpoint data"))
        scorer = member_scorer(net, meta, data, calib_batches, calib_batch_size, dev)
        if int(meta["supernet"].get("ensemble", 1)) == 1:
            return scorer
        members = [scorer]
        for member in check_members(path, meta):  # the data is loaded once, for all of them
            net, member_meta = load_supernet(member, dev)
            members.append(member_scorer(net, member_meta, data, calib_batches, calib_batch_size, dev))
        return EnsembleScorer(members)  # type: ignore[return-value]

    def score(self, genotype: Genotype) -> Score:
        try:
            self.net.validate(genotype)
        except (ValueError, TypeError) as err:
            return Score("failed", reason=f"not a path of the supernet: {err}")
        try:
            accuracy, info = self.scorer(genotype)
        except Exception as err:  # a candidate's failure is a result, never an exception
            oom = is_out_of_memory(err)
            if not oom:
                log.warning("scoring %s failed", genotype.to_string(), exc_info=True)
            if oom and self.device.type == "cuda":
                torch.cuda.empty_cache()
            kind = "out of memory" if oom else type(err).__name__
            return Score("failed", reason=f"{kind}: {err}".splitlines()[0][:500])
        params, macs = count_spec(self.net.spec(genotype))
        info.update(proxy_params=params, proxy_macs=macs, calib_images=self.scorer.calib_images,
                    eval_images=len(self.scorer.split.y))
        return Score("ok", accuracy=accuracy, info=info)

    def score_many(self, genotypes: Iterable[Genotype]) -> list[Score]:
        """``score`` of each, computed together: paths sharing leading layers share their work
        (``nas.supernet.prefix``; the same numbers).  If the batch fails, each path is scored alone."""
        genotypes = list(genotypes)
        valid = []
        for g in genotypes:
            try:
                self.net.validate(g)
                valid.append(g)
            except (ValueError, TypeError):
                pass
        if len(valid) < 2:
            return [self.score(g) for g in genotypes]
        start = time.perf_counter()
        try:
            accuracies = dict(zip(valid, score_paths(self.scorer, valid)))
        except Exception:  # e.g. out of memory holding a prefix's activations: one path at a time
            log.warning("scoring %d paths together failed; scoring them one at a time", len(valid), exc_info=True)
            return [self.score(g) for g in genotypes]
        share = (time.perf_counter() - start) / len(valid)
        out = []
        for g in genotypes:
            if g not in accuracies:
                out.append(self.score(g))  # the failure with its reason
                continue
            params, macs = count_spec(self.net.spec(g))
            out.append(Score("ok", accuracy=float(accuracies[g]), info={
                "score_s": share, "proxy_params": params, "proxy_macs": macs,
                "calib_images": self.scorer.calib_images, "eval_images": len(self.scorer.split.y)}))
        return out
