"""``nas train-proxy``: one proxy trial outside Ray -- train, evaluate, cost and reward of a genotype."""

from __future__ import annotations

import argparse
import logging
import sys

from .common import add_run_options, human, print_json, print_table

log = logging.getLogger(__name__)


def configure(p: argparse.ArgumentParser) -> None:
    p.description = ("Run one proxy trial outside Ray: build the proxy network of a genotype, "
                     "train and evaluate it on the held-out split, compute the target "
                     "model's cost and the reward.  Exit 0 when the trial is ok, 1 when it "
                     "failed (the reason is printed).")
    p.add_argument("genotype", metavar="GENOTYPE",
                   help="a named genotype (b0, mnasnet-a1), a TF block string or a timm arch string")
    p.add_argument("--config", metavar="FILE", default=None,
                   help="YAML with sections data, proxy, objective, target (an experiment file works too; "
                        "its other sections are ignored)")
    add_run_options(p, "proxy.epochs=3", ray=False)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    p.set_defaults(func=run)


def _progress(metrics: dict) -> None:
    print(f"epoch {metrics['epoch']:>3}  loss {metrics['loss']:.4f}  accuracy {metrics['accuracy']:.4f}  "
          f"{metrics['images_per_s']:.0f} images/s", file=sys.stderr, flush=True)


def print_result(result) -> None:
    import torch

    rows = [
        ("genotype", result.genotype), ("status", result.status + (f" ({result.reason})" if result.reason else "")),
        ("accuracy", f"{result.accuracy:.4f} (held out)" if result.ok else "-"), ("reward", f"{result.reward:.4f}"),
        ("target params", f"{result.params:,} ({human(result.params)})"),
        ("target MACs", f"{result.macs:,} ({human(result.macs)})"), ("cost", f"{result.cost:.6g}"),
        ("proxy params", f"{result.proxy_params:,} ({human(result.proxy_params)})"),
        ("proxy MACs", f"{result.proxy_macs:,} ({human(result.proxy_macs)})"),
        ("epochs", str(result.epochs)), ("wall", f"{result.wall_s:.1f} s"),
        ("threads", f"{torch.get_num_threads()} (proxy.threads)"),
        ("training", f"{result.images_per_s:.0f} images/s"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if result.history:
        print()
        print_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
                     for h in result.history], ["epoch", "loss", "accuracy", "lr", "images_per_s", "train_s"])


def run(args: argparse.Namespace) -> int:
    from nas.config import to_dict
    from nas.evaluators.proxy import run_trial
    from nas.experiment.trial import load_trial_config
    from nas.proxy.runtime import set_trial_threads
    from search_spaces import resolve_genotype

    cfg = load_trial_config(args.config, args.overrides)
    genotype = resolve_genotype(args.genotype)
    log.debug("trial config: %s", to_dict(cfg))
    threads = set_trial_threads(cfg.proxy)  # one trial: proxy.threads, else 1 (a search trial's default CPUs)
    log.debug("training with %d torch thread(s)", threads)
    on_epoch = None if (args.json or args.quiet) else _progress
    result = run_trial(genotype, cfg.proxy, cfg.data, cfg.objective, cfg.target, on_epoch=on_epoch)
    if args.json:
        print_json(result.to_dict())
    else:
        print_result(result)
    return 0 if result.ok else 1
