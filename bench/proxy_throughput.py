"""Proxy-trial throughput: how much of a trial is training, packing trials on one device, start-up cost.

Sections (``--sections``, all by default):

* ``efficiency``: a proxy trial of B0 (default 5 epochs, resolution 32, 10k images of
  cifar10_small: 8k train + 2k held out) against the peer, a bare training loop of
  the same network (same batch size, steps, optimizer, autocast and memory format,
  one fixed input batch, no augmentation, no evaluation).  Prints the fraction of
  the trial's wall time the bare steps would take.  Goal >= 0.85.
* ``packing``: 1, 2 and 4 trials at once in separate processes on the same device;
  aggregate images/s of each against one trial alone.  Goal: 4 packed >= 2.5x one.
* ``fresh``: one trial in a fresh process (imports, data load, CUDA/oneDNN init) against
  the same trial in a warm process.
* ``quickstart``: seconds per proxy trial at the CPU quickstart setting
  (experiments/proxy_cpu.yaml), in a warm process.

Meant for the GPU machine; runs on a CPU too (use ``--quick`` there: width 0.25 and a
stride-2 stem everywhere, and 1-epoch trials in ``packing`` and ``fresh``).  Run from
the repository root:

    .venv/bin/python bench/proxy_throughput.py                       # GPU, full setting
    OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_throughput.py --quick --device cpu --packs 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace

from _data import ROOT, default_data, npz_overrides


def settings(args):
    from nas.experiment.trial import load_trial_config

    overrides = [f"proxy.epochs={args.epochs}", f"proxy.width={args.width}", f"proxy.device={args.device}",
                 *npz_overrides(args.data, holdout="0.2")]
    if args.train_limit:
        overrides.append(f"data.train_limit={args.train_limit}")
    if args.quick:
        overrides += ["proxy.width=0.25", "proxy.stem_stride=2", "proxy.batch_size=64", "proxy.lr=0.1"]
    cfg = load_trial_config(None, overrides + args.overrides)
    return cfg.data, cfg.proxy


def one_trial(data, proxy):
    from nas.cost.objective import ObjectiveConfig
    from nas.evaluators.proxy import run_trial
    from search_spaces import named_genotype

    result = run_trial(named_genotype("b0"), proxy, data, ObjectiveConfig())
    if not result.ok:
        raise SystemExit(f"trial failed: {result.reason}")
    return result


def bare_loop(data_cfg, proxy) -> float:
    """Seconds for the trial's training steps alone: same network and step, one fixed batch."""
    import torch
    import torch.nn.functional as F

    from efficientnet import build_model
    from nas.data import load_data
    from nas.proxy.runtime import resolve_device, use_amp, use_channels_last
    from nas.proxy.ops import make_optimizer
    from search_spaces import named_genotype

    data = load_data(data_cfg)
    device = resolve_device(proxy.device)
    amp = use_amp(proxy, device)
    fmt = torch.channels_last if use_channels_last(proxy, device) else torch.contiguous_format
    model = build_model(proxy.spec(named_genotype("b0"), data.num_classes), bn_momentum=proxy.bn_momentum,
                        drop_connect_rate=0.0).to(device, memory_format=fmt)
    opt = make_optimizer(model, proxy.optimizer, proxy.lr, proxy.momentum, proxy.nesterov, proxy.weight_decay,
                         proxy.betas, device)
    batch = min(proxy.batch_size, len(data.y_train))
    steps = proxy.epochs * (len(data.y_train) // batch)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 3, proxy.resolution, proxy.resolution, generator=gen).to(device, memory_format=fmt)
    y = torch.randint(0, data.num_classes, (batch,), generator=gen).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=proxy.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    return time.perf_counter() - start


def efficiency(args) -> None:
    data, proxy = settings(args)
    one_trial(data, replace(proxy, epochs=1))  # warm-up: imports, data upload, kernels
    trial = one_trial(data, proxy)
    bare = bare_loop(data, proxy)
    train_s = sum(h["train_s"] for h in trial.history)
    eval_s = sum(h["eval_s"] for h in trial.history)
    print(f"[efficiency] trial: {trial.epochs} epochs, wall {trial.wall_s:.2f} s (training {train_s:.2f} s, "
          f"evaluation {eval_s:.2f} s), {trial.images_per_s:.0f} images/s, held-out accuracy {trial.accuracy:.3f}")
    print(f"[efficiency] bare loop, same steps: {bare:.2f} s")
    print(f"[efficiency] fraction of trial wall time in training steps: {bare / trial.wall_s:.3f} (goal >= 0.85)")


def worker(args) -> None:
    """One trial in this process; with ``--warm``, warm up first and wait for a go line on stdin."""
    data, proxy = settings(args)
    if args.warm:
        one_trial(data, replace(proxy, epochs=1))
        print("ready", flush=True)
        sys.stdin.readline()
    start = time.time()
    result = one_trial(data, proxy)
    images = sum(h["images_per_s"] * h["train_s"] for h in result.history)
    print(json.dumps({"images": images, "start": start, "end": time.time(), "trial_wall_s": result.wall_s}))


def _spawn(args, n: int, warm: bool) -> list[subprocess.Popen]:
    cmd = [sys.executable, __file__, "--worker", "--epochs", str(args.epochs), "--width", str(args.width),
           "--device", args.device] + (["--warm"] if warm else []) + (["--quick"] if args.quick else []) \
        + (["--data", args.data] if args.data else []) \
        + (["--train-limit", str(args.train_limit)] if args.train_limit else []) \
        + [f"--set={item}" for item in args.overrides]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(n)]
    if warm:  # start all timed trials together, after every worker has warmed up
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("a packing worker failed during its warm-up")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
    return procs


def _collect(procs) -> list[dict]:
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"worker failed with exit code {p.returncode}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def packing(args) -> None:
    if args.quick:
        args = argparse.Namespace(**{**vars(args), "epochs": 1})
    rates = {}
    for n in args.packs:
        runs = _collect(_spawn(args, n, warm=True))
        span = max(r["end"] for r in runs) - min(r["start"] for r in runs)
        rates[n] = sum(r["images"] for r in runs) / span
        print(f"[packing] {n} trial(s) at once: {rates[n]:.0f} training images/s aggregate over {span:.1f} s")
    if 1 in rates:
        for n in args.packs:
            if n != 1:
                goal = " (goal >= 2.5x)" if n == 4 else ""
                print(f"[packing] {n} packed / 1 alone: {rates[n] / rates[1]:.2f}x{goal}")


def fresh(args) -> None:
    if args.quick:
        args = argparse.Namespace(**{**vars(args), "epochs": 1})
    start = time.perf_counter()
    (cold,) = _collect(_spawn(args, 1, warm=False))
    cold_total = time.perf_counter() - start
    data, proxy = settings(args)
    one_trial(data, proxy)
    warm = one_trial(data, proxy)
    print(f"[fresh] fresh process: {cold_total:.2f} s from launch to exit (run_trial itself "
          f"{cold['trial_wall_s']:.2f} s)")
    print(f"[fresh] warm process: {warm.wall_s:.2f} s per trial")
    print(f"[fresh] fresh / warm: {cold_total / warm.wall_s:.2f}x "
          f"({cold_total - warm.wall_s:.2f} s start-up per fresh trial)")


def quickstart(args) -> None:
    from nas.experiment.trial import load_trial_config
    from nas.data import load_data
    from nas.evaluators.proxy import run_trial
    from search_spaces import named_genotype

    cfg = load_trial_config(str(ROOT / "experiments" / "proxy_cpu.yaml"), [f"proxy.device={args.device}"])
    b0 = named_genotype("b0")
    run_trial(b0, replace(cfg.proxy, epochs=1), cfg.data, cfg.objective, cfg.target)  # warm-up
    result = run_trial(b0, cfg.proxy, cfg.data, cfg.objective, cfg.target)
    print(f"[quickstart] b0, experiments/proxy_cpu.yaml (width {cfg.proxy.width:g}, {cfg.proxy.epochs} epochs on "
          f"{len(load_data(cfg.data).y_train)} images): {result.wall_s:.1f} s per trial, held-out accuracy "
          f"{result.accuracy:.3f}, {result.images_per_s:.0f} images/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="efficiency,packing,fresh,quickstart")
    parser.add_argument("--data", default=default_data(), help="npz file (default: cifar10_small.npz if found)")
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="proxy/data override, e.g. proxy.channels_last=on (the layout of packed search trials)")
    parser.add_argument("--packs", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized: width 0.25, stride-2 stem; 1-epoch trials for packing and fresh")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    import torch

    print(f"device: {args.device} ({torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, data {args.data or 'builtin'}")
    for name in args.sections.split(","):
        {"efficiency": efficiency, "packing": packing, "fresh": fresh, "quickstart": quickstart}[name](args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
