"""Per-trial overhead of the Ray Tune path, with near-empty trials (CPU).

Runs the real driver (``nas.driver.run_search``: searcher adapter, controller,
recorder writing trials.jsonl and TensorBoard) over N trials that do no
training, 2 at a time, first with long-lived reused workers (the default) and
then with a fresh worker process per trial (the peer, ``reuse_actors=False``),
in one local Ray started once.  Prints seconds per trial for both and their
ratio.  Goal: <= 0.5 s per trial at 2 concurrent with reuse.

    .venv/bin/python bench/search_overhead.py [--trials 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def empty_trial(genotype, experiment, on_epoch):
    from nas.search.trial import TrialResult

    on_epoch({"epoch": 0, "accuracy": 0.1, "loss": 2.3, "reward": 0.1})
    return TrialResult(genotype.to_string(), "ok", reward=0.1, accuracy=0.1, macs=1_000_000, params=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import cloudpickle

    from nas.driver import run_search
    from nas.experiment import load_experiment

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for reuse in (True, False):
            cfg = {"space": "tiny", "controller": {"name": "random"}, "budget": {"samples": args.trials},
                   "resources": {"cpus_per_trial": 1, "max_concurrent": 2},
                   "ray": {"reuse_actors": reuse}, "output": {"dir": tmp, "name": f"reuse_{reuse}"}}
            exp = load_experiment(data=cfg)
            start = time.perf_counter()
            outcome = run_search(exp, trial_fn=empty_trial)
            wall = time.perf_counter() - start
            assert outcome.trials == args.trials, outcome
            out[reuse] = wall / args.trials
            print(f"reuse_actors={reuse!s:5}: {args.trials} trials in {wall:.1f} s -> {out[reuse]:.3f} s/trial "
                  f"(2 concurrent)")
    ray.shutdown()
    print(f"per-trial overhead, reused workers: {out[True]:.3f} s (goal <= 0.5 s); "
          f"fresh process per trial is {out[False] / out[True]:.1f}x slower")


if __name__ == "__main__":
    main()
