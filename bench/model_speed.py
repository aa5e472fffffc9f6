"""Benchmark: train-step and inference throughput (images/s) of our EfficientNet-B0 against peers.

CPU (always): ours vs lukemelas' EfficientNet-PyTorch B0 (Tan & Le 2019, arXiv:1905.11946),
fp32, at batch 8 x 224^2 and batch 32 x 64^2.  The two models are timed in alternating rounds
in the same process, so machine noise hits both; the median step time of each is reported
with the ratio ours / peer (> 1: ours is faster).

GPU (only when CUDA is available): ours vs lukemelas, torchvision and timm B0 (each skipped
with a message when not importable), batch 256 x 224^2, bf16 autocast, channels_last, in
eager mode and under ``torch.compile``.

A train step is forward + cross-entropy + backward + SGD step in train mode; inference is an
eval-mode forward under ``torch.inference_mode``.  Our model uses its default build
(PyTorch symmetric padding); ``--same-padding`` builds it like lukemelas' (TF "SAME").

Run: ``python bench/model_speed.py [--rounds 5] [--cpu-only] [--gpu-steps 20]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from typing import Callable

import torch
from torch import nn

from efficientnet import create_model

CPU_CONFIGS = ((8, 224), (32, 64))
GPU_BATCH, GPU_RES = 256, 224


def ours(resolution: int, same_padding: bool = False) -> nn.Module:
    return create_model("efficientnet-b0", same_padding=same_padding)


def lukemelas(resolution: int) -> nn.Module:
    from efficientnet_pytorch import EfficientNet

    # image_size sets its static TF-"SAME" padding for this input size
    return EfficientNet.from_name("efficientnet-b0", image_size=resolution)


def torchvision_b0(resolution: int) -> nn.Module:
    import torchvision

    return torchvision.models.efficientnet_b0(weights=None)


def timm_b0(resolution: int) -> nn.Module:
    import timm

    return timm.create_model("efficientnet_b0", pretrained=False)


PEERS: dict[str, tuple[str, Callable[[int], nn.Module]]] = {
    "lukemelas": ("efficientnet_pytorch", lukemelas),
    "torchvision": ("torchvision", torchvision_b0),
    "timm": ("timm", timm_b0),
}


def available(module: str) -> str | None:
    """None when ``module`` imports, else why not."""
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    try:
        __import__(module)
    except Exception as err:  # e.g. a torchvision built for another torch
        return f"{module} cannot be imported: {type(err).__name__}: {err}"
    return None


def make_steps(model: nn.Module, batch: int, resolution: int, device: torch.device, bf16: bool,
               channels_last: bool, gen: torch.Generator) -> tuple[Callable[[], None], Callable[[], None]]:
    """(train step, inference step) closures on fixed random data."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(batch, 3, resolution, resolution, generator=gen).to(device, memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), generator=gen).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else \
        (lambda: torch.autocast(device.type, enabled=False))

    def train() -> None:
        model.train()
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode(), autocast():
            model(x)

    return train, infer


def timed(step: Callable[[], None], sync: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    sync()
    return time.perf_counter() - start


def run_cpu(args: argparse.Namespace) -> None:
    reason = available("efficientnet_pytorch")
    print(f"== CPU: torch {torch.__version__}, {torch.get_num_threads()} threads, fp32")
    if reason:
        print(f"lukemelas peer skipped: {reason}")
    gen = torch.Generator().manual_seed(0)
    sync = lambda: None  # noqa: E731
    for batch, res in CPU_CONFIGS:
        models = {"ours": ours(res, args.same_padding)}
        if not reason:
            models["lukemelas"] = lukemelas(res)
        steps = {name: make_steps(m, batch, res, torch.device("cpu"), False, False, gen) for name, m in models.items()}
        for mode, which in (("train", 0), ("infer", 1)):
            for name in models:  # warm-up (allocator, oneDNN primitive caches)
                steps[name][which]()
            times: dict[str, list[float]] = {name: [] for name in models}
            for _ in range(args.rounds):
                for name in models:
                    times[name].extend(timed(steps[name][which], sync) for _ in range(args.steps))
            rate = {name: batch / statistics.median(t) for name, t in times.items()}
            line = f"batch {batch:3d} x {res}^2 {mode:5s}: ours {rate['ours']:7.1f} img/s"
            if "lukemelas" in rate:
                line += f", lukemelas {rate['lukemelas']:7.1f} img/s, ratio ours/lukemelas {rate['ours'] / rate['lukemelas']:.2f}"
            print(line, flush=True)


def run_gpu(args: argparse.Namespace, device: torch.device | None = None, batch: int = GPU_BATCH,
            resolution: int = GPU_RES) -> None:
    """The GPU comparison (``device``/``batch``/``resolution`` can be changed to smoke-test it on a CPU)."""
    device = device or torch.device("cuda")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"== GPU: {device_name}, torch {torch.__version__}, batch {batch} x {resolution}^2, bf16 autocast, channels_last")
    builders: dict[str, Callable[[int], nn.Module]] = {"ours": lambda r: ours(r, args.same_padding)}
    for name, (module, build) in PEERS.items():
        reason = available(module)
        if reason:
            print(f"{name} peer skipped: {reason}")
        else:
            builders[name] = build
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for compiled in (False, True):
        rates: dict[tuple[str, str], float] = {}
        for name, build in builders.items():
            try:
                model = build(resolution).to(device, memory_format=torch.channels_last)
                run = torch.compile(model) if compiled else model
                steps = make_steps(run, batch, resolution, device, True, True, gen)
                for mode, step in zip(("train", "infer"), steps):
                    for _ in range(args.gpu_warmup):
                        step()
                    sync()
                    t = [timed(step, sync) for _ in range(args.gpu_steps)]
                    rates[(name, mode)] = batch / statistics.median(t)
            except Exception as err:  # a peer that fails (e.g. under torch.compile) must not stop the others
                print(f"{name} ({'compile' if compiled else 'eager'}) failed: {type(err).__name__}: {err}")
            finally:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        for mode in ("train", "infer"):
            base = rates.get(("ours", mode))
            parts = []
            for name in builders:
                if (name, mode) in rates:
                    r = rates[(name, mode)]
                    parts.append(f"{name} {r:8.1f}" + (f" ({base / r:.2f}x)" if base and name != "ours" else ""))
            print(f"{'compile' if compiled else 'eager':7s} {mode:5s} img/s: " + ", ".join(parts)
                  + "   (ratio = ours / peer)", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1, help="timed CPU steps per model per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating CPU rounds (ours, peer, ours, ...)")
    parser.add_argument("--gpu-steps", type=int, default=20, help="timed GPU steps per model and mode")
    parser.add_argument("--gpu-warmup", type=int, default=5, help="GPU warm-up steps (compilation happens here)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU part even when CUDA is available")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU part")
    parser.add_argument("--same-padding", action="store_true", help="build ours with TF-'SAME' padding")
    args = parser.parse_args(argv)
    if min(args.steps, args.rounds, args.gpu_steps) < 1 or args.gpu_warmup < 0:
        parser.error("--steps, --rounds and --gpu-steps must be >= 1, --gpu-warmup >= 0")
    if not args.gpu_only:
        run_cpu(args)
    if args.cpu_only:
        return 0
    if torch.cuda.is_available():
        run_gpu(args)
    else:
        print("== GPU part skipped: CUDA is not available")
    return 0


if __name__ == "__main__":
    sys.exit(main())
