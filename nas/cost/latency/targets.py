"""The three latency targets -- PyTorch CPU, CUDA, ONNX Runtime (CPU) -- and interleaved measuring.

A target turns ``(module, input shape, settings)`` into a *runner*: a callable
``run(repeats) -> list of ms`` that does the warm-up passes and then times
``repeats`` passes.  ``measure_many`` builds runners a chunk at a time and
runs their rounds interleaved (see ``nas.cost.latency.measure``); everything runs
inside :func:`target_context`, which fixes the CPU threads, pins them,
flushes denormals and steadies malloc for the CPU targets, and selects the
device for CUDA.

CUDA: every pass is bracketed by two CUDA events on the current stream and
the elapsed times are read after one synchronize at the end of the round.  The
CUDA path needs a GPU: it raises a ValueError naming the problem where torch
sees none.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import platform
import time
from typing import Callable, Iterator, NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from ...export import onnx_bytes, onnxruntime
from .measure import Measurement, MeasureSettings, cpu_threads, pinned_cpus, steady_malloc

Runner = Callable[[int], "Timing"]
TARGET_ONNXRUNTIME = "target 'onnxruntime'"
#: A module to measure, built on demand (a table has thousands), and its input shape without the batch.
Item = tuple[Callable[[], nn.Module], tuple[int, ...]]


def _input(shape: tuple[int, ...], batch: int, dtype: torch.dtype = torch.float32,
           device: torch.device | str = "cpu") -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn((batch, *shape), generator=gen).to(device=device, dtype=dtype)


class Timing(NamedTuple):
    """The timed passes of one round (ms, by the settings' clock) and, for one thread, the share of their wall
    time the measuring thread was on a CPU (None where it says nothing: CUDA, several threads)."""

    times_ms: list[float]
    cpu_share: float | None = None


def _timed(fn: Callable[[], object], warmup: int, repeats: int, clock: str, threads: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    times = []
    wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(repeats):
        start = now()
        fn()
        times.append((now() - start) / 1e6)
    wall, cpu = time.perf_counter_ns() - wall0, time.thread_time_ns() - cpu0
    return Timing(times, min(1.0, cpu / wall) if threads == 1 and wall > 0 else None)


# -- PyTorch on the CPU ------------------------------------------------------------------------------------


def _cpu_runner(module: nn.Module, shape: tuple[int, ...], s: MeasureSettings) -> Runner:
    dtype = torch.bfloat16 if s.dtype == "bf16" else torch.float32
    if dtype != torch.float32:
        module = copy.deepcopy(module).to(dtype)
    module.eval()
    x = _input(shape, s.batch, dtype)

    def run(repeats: int) -> list[float]:
        with torch.inference_mode():
            return _timed(lambda: module(x), s.warmup, repeats, s.clock, s.threads)

    return run


# -- CUDA --------------------------------------------------------------------------------------------------


def cuda_device(settings: MeasureSettings) -> torch.device:
    """The CUDA device of ``settings``, or a ValueError saying why there is none."""
    if not torch.cuda.is_available():
        raise ValueError(f"target 'cuda' needs a CUDA device, but torch {torch.__version__} sees none "
                         "(torch.cuda.is_available() is False); use --target cpu or onnxruntime here")
    if settings.device >= torch.cuda.device_count():
        raise ValueError(f"CUDA device {settings.device} does not exist; this machine has "
                         f"{torch.cuda.device_count()} (indices 0..{torch.cuda.device_count() - 1})")
    return torch.device("cuda", settings.device)


def _cuda_runner(module: nn.Module, shape: tuple[int, ...], s: MeasureSettings) -> Runner:
    device = cuda_device(s)
    dtype = torch.bfloat16 if s.dtype == "bf16" else torch.float32
    if dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError(f"CUDA device {torch.cuda.get_device_name(device)} does not support bf16; use dtype fp32")
    module = copy.deepcopy(module).to(device=device, dtype=dtype).eval()
    x = _input(shape, s.batch, dtype, device)

    def run(repeats: int) -> list[float]:
        with torch.inference_mode():
            for _ in range(s.warmup):
                module(x)
            torch.cuda.synchronize(device)
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
            for start, end in zip(starts, ends):
                start.record()
                module(x)
                end.record()
            torch.cuda.synchronize(device)
        return Timing([a.elapsed_time(b) for a, b in zip(starts, ends)])

    return run


# -- ONNX Runtime (CPU) ------------------------------------------------------------------------------------


def _onnxruntime_runner(module: nn.Module, shape: tuple[int, ...], s: MeasureSettings) -> Runner:
    ort = onnxruntime(TARGET_ONNXRUNTIME)
    model = onnx_bytes(module, shape, s.batch)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = s.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    # Created inside target_context: the session's thread pool inherits the pinning.
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: _input(shape, s.batch).numpy()}

    def run(repeats: int) -> list[float]:
        return _timed(lambda: session.run(None, feed), s.warmup, repeats, s.clock, s.threads)

    return run


_RUNNERS = {"cpu": _cpu_runner, "cuda": _cuda_runner, "onnxruntime": _onnxruntime_runner}


# -- measuring ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def target_context(settings: MeasureSettings) -> Iterator[None]:
    """Threads, pinning and denormal flushing for the CPU targets; the current device for CUDA."""
    if settings.backend == "cuda":
        with torch.cuda.device(cuda_device(settings)):
            yield
    else:
        with cpu_threads(settings.threads, settings.pin, settings.steady_malloc):
            yield


def prepare(module: nn.Module, input_shape: Sequence[int], settings: MeasureSettings) -> Runner:
    """A runner for ``module`` on ``settings``' target (call it inside :func:`target_context`)."""
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be positive integers (channels, height, width), got {input_shape!r}")
    return _RUNNERS[settings.backend](module, shape, settings)


def _weighted_share(rounds: list[tuple[float, float]]) -> float | None:
    """An entry's CPU share over its rounds, each weighted by its timed wall time: a round that waited for the
    CPU took longer, and so counts for more (a plain mean would let many quick rounds hide one long wait)."""
    if not rounds:
        return None
    shares, walls = np.array(rounds, dtype=float).T
    return float((shares * walls).sum() / walls.sum()) if walls.sum() > 0 else float(shares.mean())


def measure_many(items: Sequence[Item], settings: MeasureSettings, chunk: int = 256,
                 progress: Callable[[int, int], None] | None = None) -> list[Measurement]:
    """Measurements of every item, rounds interleaved within chunks of ``chunk`` items.

    ``progress(done, total)`` is called after each chunk.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out: list[Measurement] = []
    with target_context(settings):
        for first in range(0, len(items), chunk):
            runners = [prepare(make(), shape, settings) for make, shape in items[first:first + chunk]]
            times: list[list[float]] = [[] for _ in runners]
            shares: list[list[tuple[float, float]]] = [[] for _ in runners]  # (share, that round's timed ms)
            for _ in range(settings.rounds):
                for i, run in enumerate(runners):
                    timing = run(settings.repeats)
                    times[i].extend(timing.times_ms)
                    if timing.cpu_share is not None:
                        shares[i].append((timing.cpu_share, sum(timing.times_ms)))
            out.extend(Measurement.from_times(t, _weighted_share(s)) for t, s in zip(times, shares))
            del runners
            if progress is not None:
                progress(len(out), len(items))
    return out


def measure_module(module: nn.Module, input_shape: Sequence[int], settings: MeasureSettings) -> Measurement:
    """Latency of ``module`` on an input of ``(settings.batch, *input_shape)`` on the settings' target."""
    return measure_many([(lambda: module, tuple(input_shape))], settings)[0]


# -- what was measured on ----------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe_target(settings: MeasureSettings) -> dict:
    """Device name, host, threads, pinning, library versions and date: what a table was measured on."""
    info = {
        "backend": settings.backend,
        "device": _cpu_name(),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": settings.threads,
        "pinned_cpus": pinned_cpus(settings.threads) if settings.pin and settings.backend != "cuda" else None,
        "malloc": "glibc, fixed thresholds (trim 1 GiB, mmap 32 MiB)"
        if settings.steady_malloc and settings.backend != "cuda" and steady_malloc() else "default",
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a str subclass that YAML cannot write
        "numpy": str(np.__version__),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if settings.backend == "cuda":
        device = cuda_device(settings)
        info.update(device=torch.cuda.get_device_name(device), host_cpu=_cpu_name(), cuda=str(torch.version.cuda),
                    cudnn=torch.backends.cudnn.version())
    if settings.backend == "onnxruntime":
        info["onnxruntime"] = str(onnxruntime(TARGET_ONNXRUNTIME).__version__)
    return info
