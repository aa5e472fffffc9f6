"""How latency is measured: settings, the measurement record, threads and pinning.

MnasNet (Tan et al. 2019, arXiv:1807.11626, section 3) optimises latency
measured on the target device rather than a proxy such as FLOPs.  The targets
(``nas.cost.latency.targets``) time one forward pass of a batch:

* ``cpu``: PyTorch eager on the CPU, ``torch.inference_mode()``, eval mode, a
  fixed intra-op thread count (``torch.set_num_threads``, restored after).
* ``cuda``: PyTorch on a CUDA device, timed with CUDA events around every
  forward pass after a warm-up (fp32 or bf16).  The events time the GPU
  stream from the first to the last kernel of the pass, so launch gaps of a
  launch-bound model (batch 1) are included, as a user would see them.
* ``onnxruntime``: the module exported with the TorchScript ONNX exporter
  (``dynamo=False``: the dynamo exporter needs ``onnxscript``) and run by ONNX
  Runtime's CPU execution provider with ``intra_op_num_threads`` threads,
  sequential execution, all graph optimisations.

A measurement is ``rounds`` rounds of ``warmup`` untimed passes then
``repeats`` timed passes; when many modules are measured (a table's layers, a
validation's models) the rounds are interleaved -- round 1 of every module,
then round 2 of every module... -- so that a burst of load from another job
slows one round of many modules rather than every pass of one.  The timings
of all rounds are reported as median, minimum, interquartile range and
standard deviation.  The
latency a table uses is the median (``statistic: median``, ignores the
occasional slow pass) or the minimum (``statistic: min``: on a machine shared
with other jobs most passes are slowed by time-slicing, and the fastest pass is
the steadiest estimate of the unshared latency, as ``timeit`` advises).

Clock: ``wall`` (default) times what a user waits for.  On a machine shared
with other jobs, wall time of a long pass includes the time the scheduler gave
the core to someone else, which a short isolated layer mostly escapes, so
tables and whole models are skewed differently; ``clock: cpu`` times the
measuring thread's CPU time (``time.thread_time_ns``) instead, which leaves
that out.  It needs ``threads: 1`` (with one intra-op thread both PyTorch and
ONNX Runtime compute on the calling thread) and is for CPU targets only.

Denormals: a randomly initialised network fed random data produces
subnormal floats (tiny SE/SiLU intermediates), which x86 CPUs process up to
100x slower, so a layer's time would depend on its random weights.  The CPU
targets flush them to zero while measuring (``torch.set_flush_denormal``,
ONNX Runtime's ``session.set_denormal_as_zero``), as deployment runtimes do;
the torch flag is set back to its default (off) after.

Allocator: PyTorch eager takes every activation from malloc.  With glibc's
default, adaptive thresholds, the large activations of a whole network are
returned to the OS and faulted back in on every pass, while an isolated layer
settles into reusing one block -- a 224x224 model measured 1.4-2x its layer
sum here, and a first layer 2x its isolated time.  ``steady_malloc`` (default
on) fixes glibc's trim threshold at 1 GiB and its mmap threshold at 32 MiB
(``mallopt``, once, for the rest of the process; the process then keeps
freed memory for reuse), which is what serving setups get from jemalloc or
tcmalloc; the table records it.  Not glibc: nothing changes.

Thread pinning: on Linux (``os.sched_setaffinity``) the CPU targets pin every
thread of the process to the first ``threads`` CPUs the process may use, for
the duration of the measurement, and restore each thread's affinity after.
Threads created meanwhile (OpenMP, ONNX Runtime's pool) inherit the pinning.
Where the platform has no affinity call (macOS, Windows) nothing is pinned and
the table records ``pinned_cpus: null``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("cpu", "cuda", "onnxruntime")
DTYPES = ("fp32", "bf16")


@dataclass(frozen=True)
class MeasureSettings:
    """How latency is measured: the target runtime, threads, batch, precision and repetitions.

    ``threads`` is the intra-op thread count of the CPU targets (MnasNet measured
    one big core of a phone, hence the default 1); ``device`` is the CUDA device
    index; ``pin`` pins the CPU threads where the platform allows; ``clock`` is
    wall time or the thread's CPU time (for a shared machine); ``statistic`` is
    which figure of the timed passes is the latency (median, or min);
    ``steady_malloc`` fixes glibc's malloc thresholds (see the module docstring).
    """

    backend: Literal["cpu", "cuda", "onnxruntime"] = "cpu"
    threads: int = 1
    batch: int = 1
    dtype: Literal["fp32", "bf16"] = "fp32"
    warmup: int = 3
    repeats: int = 10
    rounds: int = 3
    pin: bool = True
    device: int = 0
    clock: Literal["wall", "cpu"] = "wall"
    statistic: Literal["median", "min"] = "median"
    steady_malloc: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.statistic not in ("median", "min"):
            raise ValueError(f"statistic must be 'median' or 'min', got {self.statistic!r}")
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be 'wall' or 'cpu', got {self.clock!r}")
        if self.clock == "cpu" and (self.backend == "cuda" or self.threads != 1):
            raise ValueError(f"clock 'cpu' times the calling thread's CPU time, so it needs a CPU target with "
                             f"threads=1 (got backend={self.backend!r}, threads={self.threads}); use clock 'wall'")
        if self.backend == "onnxruntime" and self.dtype != "fp32":
            raise ValueError(f"the onnxruntime target measures fp32 only, got dtype={self.dtype!r}; "
                             "use dtype fp32, or the cuda/cpu target for bf16")
        for name, low in (("threads", 1), ("batch", 1), ("warmup", 0), ("repeats", 1), ("rounds", 1),
                          ("device", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


#: An entry is noisy when the measuring thread was on a CPU for less than this share of the timed passes' wall
#: time (other processes took its CPU: the machine was busy) -- or, where that share is unknown, when its
#: passes spread over more than ``NOISY_SPREAD`` of their median (interquartile range).  A table is measured
#: on a busy machine when more than ``BUSY_ENTRIES`` of its entries are noisy, or when over all its timed passes
#: the measuring thread was on a CPU for less than ``BUSY_CPU_SHARE`` of the time (``overall_cpu_share``).
BUSY_CPU_SHARE = 0.9
NOISY_SPREAD = 0.25
BUSY_ENTRIES = 0.2


@dataclass(frozen=True)
class Measurement:
    """Latency of one forward pass of a batch, in milliseconds: median and spread over the repeats.

    ``cpu_share``: the share of the timed passes' wall time the measuring thread was on a CPU (one
    thread only; None where unknown).  1.0 is a quiet machine; 0.5 means another process took the CPU
    half the time -- the wall-clock latencies then include waiting (``noisy``).
    """

    median_ms: float
    iqr_ms: float
    stdev_ms: float
    min_ms: float
    repeats: int
    cpu_share: float | None = None
    #: The sum of the timed passes (ms): with the wall clock, the wall time the measurement took -- waits included.
    total_ms: float | None = None

    @classmethod
    def from_times(cls, times_ms: list[float] | np.ndarray, cpu_share: float | None = None) -> "Measurement":
        t = np.asarray(times_ms, dtype=float)
        if t.size == 0 or not np.all(np.isfinite(t)):
            raise ValueError(f"need finite timings, got {t!r}")
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        return cls(float(med), float(q3 - q1), float(t.std(ddof=1)) if t.size > 1 else 0.0, float(t.min()),
                   int(t.size), cpu_share, float(t.sum()))

    @property
    def spread(self) -> float:
        """The interquartile range as a share of the median."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else 0.0

    def noisy(self, clock: str = "wall") -> bool:
        """Measured while the machine was busy: with one thread, the measuring thread waited for a CPU
        (``cpu_share``, the direct signal: a tiny layer's passes jitter on a quiet machine too); where that is
        unknown (several threads, CUDA), widely spread.  The CPU clock leaves waiting out: never noisy."""
        if clock != "wall":
            return False
        if self.cpu_share is not None:
            return self.cpu_share < BUSY_CPU_SHARE
        return self.spread > NOISY_SPREAD

    def value(self, statistic: str = "median") -> float:
        """The latency (ms) by ``statistic``: ``median`` or ``min``."""
        return self.min_ms if statistic == "min" else self.median_ms

    def to_dict(self, clock: str = "wall") -> dict:
        out = {"ms": self.median_ms, "iqr_ms": self.iqr_ms, "stdev_ms": self.stdev_ms, "min_ms": self.min_ms,
               "repeats": self.repeats}
        if self.cpu_share is not None:
            out["cpu_share"] = round(self.cpu_share, 4)
        if self.total_ms is not None:
            out["total_ms"] = round(self.total_ms, 4)
        if self.noisy(clock):
            out["noisy"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Measurement":
        share, total = data.get("cpu_share"), data.get("total_ms")
        return cls(float(data["ms"]), float(data.get("iqr_ms", 0.0)), float(data.get("stdev_ms", 0.0)),
                   float(data.get("min_ms", data["ms"])), int(data.get("repeats", 0)),
                   None if share is None else float(share), None if total is None else float(total))


def noise_summary(measurements: list[Measurement], clock: str = "wall") -> dict:
    """How noisy a set of measurements is: noisy count and share, median spread, median CPU share, ``busy``."""
    if not measurements:
        return {"entries": 0, "noisy": 0, "noisy_share": 0.0, "median_spread": 0.0, "median_cpu_share": None,
                "busy": False}
    noisy = sum(m.noisy(clock) for m in measurements)
    shared = [m for m in measurements if m.cpu_share is not None]
    overall = overall_cpu_share(shared) if shared else 1.0
    return {"entries": len(measurements), "noisy": noisy, "noisy_share": noisy / len(measurements),
            "median_spread": float(np.median([m.spread for m in measurements])),
            "median_cpu_share": float(np.median([m.cpu_share for m in shared])) if shared else None,
            "cpu_share": overall if shared else None,
            "busy": noisy / len(measurements) > BUSY_ENTRIES or
            (clock == "wall" and bool(shared) and overall < BUSY_CPU_SHARE)}


def overall_cpu_share(measurements: list[Measurement]) -> float:
    """The measuring thread's share of a CPU over ALL the timed passes: each entry's share weighted by its
    wall time (``total_ms``; median x repeats for tables saved without it).  The per-entry median misleads on a loaded machine: a tiny layer's few
    passes often fit in one scheduler slice (share 1.0) while the long ones wait; time on the whole says how
    much of the measurement was waiting."""
    walls = np.array([m.total_ms if m.total_ms is not None else m.median_ms * max(m.repeats, 1)
                      for m in measurements])
    shares = np.array([m.cpu_share for m in measurements], dtype=float)
    return float((walls * shares).sum() / walls.sum()) if walls.sum() > 0 else float(shares.mean())


def describe_noise(summary: dict, what: str = "entries") -> str:
    """One line: the spread, the CPU share and, for a busy machine, the warning."""
    share = summary.get("cpu_share", summary.get("median_cpu_share"))
    text = (f"noise: {summary['noisy']} of {summary['entries']} {what} noisy, median spread "
            f"{100 * summary['median_spread']:.1f}% of the median"
            + (f", the measuring thread on a CPU {100 * share:.0f}% of the time" if share is not None else ""))
    load = summary.get("load")
    if load:
        text += f"; load average {load[0]:.2f}..{load[1]:.2f} on {summary.get('cpus', '?')} CPUs"
    if summary.get("busy"):
        text = (f"WARNING: measured while the machine was busy -- {text}; these latencies include waiting for "
                "a CPU: measure again on a quiet machine (or --clock cpu with --threads 1)")
    return text


# -- allocator, threads and pinning ---------------------------------------------------------------------------------


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h
_steady: bool | None = None


def steady_malloc() -> bool:
    """Fix glibc malloc's trim (1 GiB) and mmap (32 MiB) thresholds, once per process; False if not glibc."""
    global _steady
    if _steady is None:
        _steady = False
        if platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL(None)
                _steady = bool(libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)) and bool(
                    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20))
            except (OSError, AttributeError):
                _steady = False
        log.debug("steady malloc thresholds: %s", _steady)
    return _steady


def _thread_ids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def pinned_cpus(threads: int) -> list[int] | None:
    """The CPUs a measurement with ``threads`` threads is pinned to; None where pinning is unsupported."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if threads > len(allowed):
        log.warning("%d threads asked for but this process may use only %d CPUs (%s): threads will share CPUs",
                    threads, len(allowed), allowed)
    return allowed[:threads]


@contextlib.contextmanager
def cpu_threads(threads: int, pin: bool = True, steady: bool = False) -> Iterator[list[int] | None]:
    """Run the body with ``threads`` torch intra-op threads, pinned to as many CPUs where possible.

    Denormals are flushed to zero meanwhile; ``steady`` calls :func:`steady_malloc`
    (see the module docstring).
    Yields the pinned CPU list (None when not pinned).  Restores the thread
    count and every thread's previous affinity on exit.
    """
    import torch

    if steady:
        steady_malloc()
    old_threads = torch.get_num_threads()
    saved: dict[int, set[int]] = {}
    cpus = pinned_cpus(threads) if pin else None
    torch.set_num_threads(threads)
    flushing = torch.set_flush_denormal(True)
    try:
        if cpus is not None:
            for tid in _thread_ids():
                try:
                    saved[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, cpus)
                except OSError:  # the thread ended meanwhile, or the platform refuses
                    continue
        yield cpus
    finally:
        for tid, mask in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)
        torch.set_num_threads(old_threads)
        if flushing:
            torch.set_flush_denormal(False)
