"""Benchmark: ``nas train`` throughput (images/s) -- our B0 against lukemelas' B0 under the same loop, and
1 -> 2 Ray Train workers.

Section ``models`` (one process, one thread unless --threads): the recipe's training step
(``nas.train.loop.train_step``: forward, label-smoothed cross-entropy, backward, TF RMSProp,
schedule, EMA update) on batches from the recipe's input pipeline (pad-crop, flip, RandAugment),
for our B0 (built with TF "SAME" padding, as lukemelas pads) and for lukemelas'
EfficientNet-PyTorch B0.  Both run in alternating rounds of equal length; each is scored by its best
round (an equal budget; the machine's noise only slows rounds down); the ratio ours / lukemelas is
printed (> 1: ours is faster).

Section ``scaling``: ``nas.ray.train.fit`` on the built-in data for 1 epoch with 1 worker, then
with 2 (one CPU each, gloo DDP), from a fresh local Ray each; the aggregate training images/s of the
epoch and the speed-up 2 / 1 (the ideal on 2 idle cores is 2).

GPU (``--gpu``; only where CUDA is available): our B0 against torchvision's efficientnet_b0 at 224x224,
bf16 autocast, channels_last, the same step, batch 128 (skipped with a message when torchvision does
not import).

Run: ``python bench/train_speed.py [--sections models,scaling] [--resolution 32] [--batch 32]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import _data  # noqa: F401  (puts the checkout on sys.path)
import torch

from efficientnet import model_spec, build_model
from nas.data import DataConfig, load_data
from nas.proxy.ops import device_split
from nas.experiment.train import TrainConfig
from nas.train.loop import train_step
from nas.train.optim import EfficientNetSchedule, ModelEma, make_optimizer
from nas.train.pipeline import Augmenter

RECIPE = TrainConfig(batch_size=32, crop="pad", augment="randaugment", randaugment_magnitude=5, eval_crop=1.0)


def ours(resolution: int, num_classes: int, device) -> torch.nn.Module:
    spec = model_spec("b0", resolution=resolution, num_classes=num_classes)
    return build_model(spec, same_padding=True, drop_connect_rate=RECIPE.drop_connect_rate, bn_eps=RECIPE.bn_eps,
                       bn_momentum=RECIPE.bn_momentum)


def lukemelas(resolution: int, num_classes: int, device) -> torch.nn.Module:
    from efficientnet_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-b0", image_size=resolution, num_classes=num_classes,
                                  drop_connect_rate=RECIPE.drop_connect_rate)


def torchvision_b0(resolution: int, num_classes: int, device) -> torch.nn.Module:
    import torchvision

    return torchvision.models.efficientnet_b0(num_classes=num_classes)


class Runner:
    """One model under the recipe's step, fed by the recipe's pipeline; ``round(steps)`` returns images/s."""

    def __init__(self, make, data, resolution: int, batch: int, device, amp: bool, channels_last: bool) -> None:
        cfg = RECIPE
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = make(resolution, data.num_classes, device).to(device, memory_format=fmt)
        self.optimizer = make_optimizer(self.model, cfg.optimizer, cfg.peak_lr(), cfg.momentum, cfg.rmsprop_decay,
                                        cfg.epsilon, cfg.weight_decay)
        self.schedule = EfficientNetSchedule(cfg.peak_lr(), 100, 0, cfg.decay_epochs, cfg.decay_rate)
        self.ema = ModelEma(self.model, cfg.ema_decay)
        self.split = device_split(data, "train", device)
        self.augmenter = Augmenter(cfg, data.mean, data.std, resolution, device, channels_last)
        self.generator = torch.Generator(device=device).manual_seed(0)
        self.batch = batch
        self.device = device
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()
        self.model.train()

    def round(self, steps: int) -> float:
        n = len(self.split.y)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, n, (self.batch,), device=self.device, generator=self.generator)
            x = self.augmenter.train_batch(self.split.x[idx], self.generator)
            train_step(self.model, self.model, x, self.split.y[idx], self.optimizer, self.schedule, self.ema,
                       RECIPE, self.autocast)
        sync()
        return steps * self.batch / (time.perf_counter() - start)


def compare(peers: dict, data, resolution: int, batch: int, device, amp: bool, channels_last: bool, rounds: int,
            steps: int, warmup: int) -> dict[str, float]:
    runners = {}
    for name, make in peers.items():
        try:
            runners[name] = Runner(make, data, resolution, batch, device, amp, channels_last)
        except ImportError as err:
            print(f"  {name}: skipped ({err})")
    for r in runners.values():
        r.round(warmup)
    best = {name: 0.0 for name in runners}
    for i in range(rounds):
        for name in (list(runners) if i % 2 == 0 else list(runners)[::-1]):
            best[name] = max(best[name], runners[name].round(steps))
    return best


def models_section(args) -> dict:
    torch.set_num_threads(args.threads)
    data = load_data(DataConfig(holdout=200))
    device = torch.device("cpu")
    best = compare({"ours": ours, "lukemelas": lukemelas}, data, args.resolution, args.batch, device, False, True,
                   args.rounds, args.steps, 2)
    print(f"B0 training, {args.resolution}x{args.resolution}, batch {args.batch}, {args.threads} thread(s), CPU fp32 "
          f"channels_last, best of {args.rounds} rounds x {args.steps} steps:")
    for name, ips in best.items():
        print(f"  {name:10s} {ips:8.1f} img/s")
    ratio = best["ours"] / best["lukemelas"] if best.get("lukemelas") else None
    if ratio:
        print(f"  ratio ours / lukemelas = {ratio:.2f}")
    return {"models": best, "ratio": ratio}


def scaling_section(args) -> dict:
    from nas.experiment.sections import OutputConfig
    from nas.experiment.train import WorkersConfig
    from nas.train.loop import TrainJob
    from nas.ray.train import fit
    from search_spaces import resolve_genotype

    result = {}
    with tempfile.TemporaryDirectory(prefix="effnas-train-speed-") as tmp:
        for workers in (1, 2):
            cfg = TrainConfig(epochs=1, batch_size=64, crop="pad", augment="none", eval_crop=1.0, ema_decay=None)
            job = TrainJob(resolve_genotype("b0").to_string(), args.width, 1.0, 32, 0.2, 1, "symmetric", cfg,
                           DataConfig(holdout=200), str(Path(tmp) / f"w{workers}"), threads=1)
            epoch = []
            fit(job, WorkersConfig(count=workers, num_cpus=2), OutputConfig(dir=tmp, name=f"w{workers}"),
                on_epoch=epoch.append)
            result[workers] = epoch[-1]["images_per_s"]
            print(f"  {workers} worker(s): {result[workers]:.1f} img/s (1 epoch, {epoch[-1]['images']} images, "
                  f"b0 width {args.width}, 32x32, global batch 64)")
    print(f"  speed-up 2 / 1 workers = {result[2] / result[1]:.2f} (ideal 2.0 on 2 idle cores)")
    return {"scaling": result, "speedup": result[2] / result[1]}


def gpu_section(args) -> dict:
    if not torch.cuda.is_available():
        print("GPU: no CUDA device; skipped")
        return {}
    data = load_data(DataConfig(holdout=200))
    best = compare({"ours": ours, "torchvision": torchvision_b0}, data, 224, args.gpu_batch, torch.device("cuda"),
                   True, True, args.rounds, args.gpu_steps, 5)
    print(f"GPU B0 training at 224x224 (resized built-in images), batch {args.gpu_batch}, bf16, channels_last:")
    for name, ips in best.items():
        print(f"  {name:12s} {ips:8.1f} img/s")
    if best.get("torchvision"):
        print(f"  ratio ours / torchvision = {best['ours'] / best['torchvision']:.2f}")
    return {"gpu": best}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", default="models,scaling", help="models, scaling, gpu (comma-separated)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--width", type=float, default=0.5, help="width of the b0 trained in the scaling section")
    p.add_argument("--gpu-batch", type=int, default=128)
    p.add_argument("--gpu-steps", type=int, default=15)
    p.add_argument("--json", default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    out = {}
    for section in args.sections.split(","):
        out.update({"models": models_section, "scaling": scaling_section, "gpu": gpu_section}[section.strip()](args))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
