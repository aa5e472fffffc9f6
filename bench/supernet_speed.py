"""Supernet speed, as ratios against peers measured in the same run.

1. Scoring: candidates scored per second (BN recalibration on the fixed calibration batches +
   held-out evaluation, through the supernet) against a bare forward pass of the EXTRACTED
   path over the same images (calibration + held-out, eval mode, same batch sizes).  Goal
   >= 0.8 of the peer; on a CPU >= 5 candidates/s at the quickstart size.
2. Training: supernet training images/s per path-step (a sandwich step over ``paths_per_step``
   paths counts each path) against training the largest path standalone (its extracted
   model, same batch, optimiser and augmentation).  Goal >= 0.7.  The like-for-like line
   trains only the largest path through the supernet.

    OMP_NUM_THREADS=1 .venv/bin/python bench/supernet_speed.py                       # CPU, quickstart size
    .venv/bin/python bench/supernet_speed.py --config experiments/supernet_gpu.yaml --data data/cifar10_small.npz
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import numpy as np

from _data import ROOT, npz_overrides


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "supernet_quick.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--data", default=None, help="an npz dataset (default: the config's data)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--candidates", type=int, default=20, help="random genotypes to score")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed (after 2 warm-up steps)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings (noisy machines)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU")
    parser.add_argument("--checkpoint", default=None, help="time a trained supernet (default: a fresh one)")
    parser.add_argument("--scoring-only", action="store_true", help="skip the training measurement")
    args = parser.parse_args()

    import torch

    from efficientnet.supernet import Supernet
    from nas.proxy.runtime import resolve_device, use_amp, use_channels_last
    from nas.data import load_data
    from nas.proxy.ops import Batcher, device_split, make_optimizer
    from nas.supernet import PathScorer, load_supernet, load_supernet_experiment
    from nas.experiment.supernet import arch_options
    from nas.supernet.train import train_step

    overrides = npz_overrides(args.data) + ([f"proxy.device={args.device}"] if args.device else []) + args.overrides
    exp = load_supernet_experiment(args.config, overrides)
    device = resolve_device(exp.proxy.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    data = load_data(exp.data)
    space = exp.search_space
    torch.manual_seed(0)
    net = load_supernet(args.checkpoint)[0] if args.checkpoint else Supernet(space, **arch_options(exp, data.num_classes))
    layout = torch.channels_last if use_channels_last(exp.proxy, device) else torch.contiguous_format
    net = net.to(device, memory_format=layout)
    cfg = exp.supernet
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp(exp.proxy, device) else nullcontext()
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(args.candidates)]
    print(f"{exp.search_space.name} supernet, width {exp.proxy.width:g} depth {exp.proxy.depth:g} {exp.proxy.resolution}px, "
          f"{device}{'' if device.type != 'cpu' else f' ({args.threads} thread(s))'}; best of {args.repeats}")

    # -- 1. scoring ------------------------------------------------------------------------------
    scorer = PathScorer(net, data, exp.proxy, cfg.calib_batches, cfg.calib_batch_size, cfg.seed, device)
    images = scorer.calib + [scorer.batcher.eval_batch(scorer.split, s, min(s + exp.proxy.eval_batch_size,
                                                                              len(scorer.split.y)))
                             for s in range(0, len(scorer.split.y), exp.proxy.eval_batch_size)]
    models = [net.extract(g).to(device, memory_format=layout).eval() for g in genotypes]
    for g in genotypes[:2]:
        scorer(g)  # warm-up

    def score_all() -> tuple[float, float]:
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        for g in genotypes:
            scorer(g)
        _sync(device)
        return time.perf_counter() - t, time.process_time() - c

    def bare_all() -> tuple[float, float]:
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        with torch.inference_mode(), autocast:
            for model in models:
                for x in images:
                    model(x)
        _sync(device)
        return time.perf_counter() - t, time.process_time() - c

    # interleaved, so that a change of the machine's load hits both; best of the repeats
    runs = [(score_all(), bare_all()) for _ in range(args.repeats)]
    sn, bare = min(r[0][0] for r in runs), min(r[1][0] for r in runs)
    n_img = sum(len(x) for x in images)
    print(f"scoring: {len(genotypes) / sn:.1f} candidates/s through the supernet (recalibration on "
          f"{scorer.calib_images} + evaluation on {len(scorer.split.y)} images) vs {len(genotypes) / bare:.1f}/s bare "
          f"forward of the extracted paths over the same {n_img} images: ratio {bare / sn:.2f} (goal >= 0.8)")
    if device.type == "cpu":  # CPU seconds of this process: less sensitive to other processes on a shared machine
        sn_c, bare_c = min(r[0][1] for r in runs), min(r[1][1] for r in runs)
        print(f"  in CPU time of this process: {len(genotypes) / sn_c:.1f} candidates/s vs {len(genotypes) / bare_c:.1f}/s "
              f"bare: ratio {bare_c / sn_c:.2f}")

    if args.scoring_only:
        return

    # -- 2. training -----------------------------------------------------------------------------
    train = device_split(data, "train", device)
    batcher = Batcher(data, device, exp.proxy.resolution, exp.proxy.crop_padding, exp.proxy.flip,
                      layout == torch.channels_last)
    gen = torch.Generator(device=device).manual_seed(0)
    batch = min(cfg.batch_size, len(train.y))
    big, small = net.largest(), net.smallest()

    def batches(k: int):
        for _ in range(k):
            idx = torch.randint(0, len(train.y), (batch,), device=train.y.device)
            yield batcher.train_batch(train, idx, gen), train.y[idx]

    def time_supernet(paths_of) -> tuple[float, int]:
        opt = make_optimizer(net, cfg.optimizer, cfg.lr * 0.01, cfg.momentum, cfg.nesterov, cfg.weight_decay,
                             cfg.betas, device)
        params = [p for p in net.parameters() if p.requires_grad]
        net.train()
        data_ = list(batches(args.steps + 2))
        count = 0
        for i, (x, y) in enumerate(data_):
            if i == 2:
                _sync(device)
                t = time.perf_counter()
            paths = paths_of()
            train_step(net, opt, x, y, paths, cfg.distill, exp.proxy.label_smoothing, autocast, params)
            if i >= 2:
                count += len(paths)
        _sync(device)
        return time.perf_counter() - t, count

    def time_standalone() -> float:
        import torch.nn.functional as F

        model = net.extract(big).to(device, memory_format=layout).train()
        opt = make_optimizer(model, cfg.optimizer, cfg.lr * 0.01, cfg.momentum, cfg.nesterov, cfg.weight_decay,
                             cfg.betas, device)
        data_ = list(batches(args.steps + 2))
        for i, (x, y) in enumerate(data_):
            if i == 2:
                _sync(device)
                t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with autocast:
                logits = model(x)
            F.cross_entropy(logits.float(), y, label_smoothing=exp.proxy.label_smoothing).backward()
            opt.step()
        _sync(device)
        return time.perf_counter() - t

    path_rng = np.random.default_rng(1)

    def sandwich():
        return ([big, small] if cfg.sandwich else []) + [space.sample(path_rng) for _ in range(cfg.random_paths)]

    sand = min((time_supernet(sandwich) for _ in range(args.repeats)), key=lambda r: r[0])
    only_big = min((time_supernet(lambda: [big]) for _ in range(args.repeats)), key=lambda r: r[0])
    alone = min(time_standalone() for _ in range(args.repeats))
    sand_ips = sand[1] * batch / sand[0]
    big_ips = only_big[1] * batch / only_big[0]
    alone_ips = args.steps * batch / alone
    print(f"training: {sand_ips:.0f} images/s per path-step through the supernet ({cfg.paths_per_step} paths a step) "
          f"vs {alone_ips:.0f} images/s training the largest path standalone: ratio {sand_ips / alone_ips:.2f} "
          f"(goal >= 0.7)")
    print(f"  like for like, the largest path alone through the supernet: {big_ips:.0f} images/s, ratio "
          f"{big_ips / alone_ips:.2f}")


if __name__ == "__main__":
    main()
