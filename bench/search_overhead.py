"""Driver overhead per candidate: the supernet evaluator's actor pool against Ray Tune trials (CPU).

Two sections, one local Ray started once:

* ``pool`` -- the supernet search path (``nas.actor_pool.run_pool_search``: the driver's ask/tell loop,
  2 long-lived scoring actors, batches of ``--batch``) over ``--candidates`` candidates of the MnasNet
  space at the quickstart size.  Prints the driver's own time per candidate (ask, tell, record to
  trials.jsonl + TensorBoard, checkpoint the controller) against the scoring time per candidate in the
  workers (BN recalibration + held-out accuracy), and their ratio (goal <= 0.20), and the end-to-end
  overhead: wall x workers / total scoring time - 1.
* ``tune`` -- the peer: the same scorer, one Ray Tune trial per candidate (``nas.driver.run_search``
  with a trial function, reused workers, 2 at a time), and near-empty Tune trials for Tune's own
  per-trial overhead.  Prints seconds per candidate of both paths and the speed ratio.

    OMP_NUM_THREADS=1 .venv/bin/python bench/search_overhead.py [--candidates 200] [--checkpoint supernet.pt]

Without ``--checkpoint`` a supernet of the quickstart size is trained for one short epoch (256 images;
scoring time does not depend on how well it is trained).
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


def supernet_trial(genotype, experiment, on_epoch):
    """One candidate as one Tune trial: the scorer is built once per (reused) worker process."""
    from nas.supernet.trials import cached_scorer

    result = cached_scorer(experiment.evaluator.checkpoint, experiment.objective, experiment.target).score_one(
        genotype.to_string())
    on_epoch({"epoch": 0, "accuracy": result.accuracy, "loss": 0.0, "reward": result.reward})
    return result


def train_checkpoint(folder: str) -> str:
    import torch

    from nas.supernet import load_supernet_experiment, train_supernet

    torch.set_num_threads(1)
    exp = load_supernet_experiment(ROOT / "experiments" / "supernet_search.yaml", [
        "supernet.epochs=1", "data.train_limit=256", f"output.dir={folder}", "output.name=bench"])
    train_supernet(exp)
    return str(exp.checkpoint_path)


ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--tune-candidates", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--checkpoint", default=None, help="a supernet.pt (default: train a 1-epoch one)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import cloudpickle

    from nas.actor_pool import run_pool_search
    from nas.driver import run_search
    from nas.experiment import load_experiment
    from nas.supernet import read_checkpoint

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or train_checkpoint(tmp)
        data = read_checkpoint(checkpoint)["meta"]["data"]
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        base = {"space": "mnasnet", "controller": {"name": "evolution", "settings": {"population": 32, "sample": 8}},
                "data": data, "baseline": "none", "verify": {"top_k": 0},
                "evaluator": {"kind": "supernet", "checkpoint": checkpoint, "workers": 2, "batch": args.batch},
                "resources": {"cpus_per_trial": 1, "max_concurrent": 2}}
        exp = load_experiment(data={**base, "budget": {"samples": args.candidates},
                                    "output": {"dir": tmp, "name": "pool"}})
        start = time.perf_counter()
        stats = run_pool_search(exp, resume=False)
        wall = time.perf_counter() - start
        ratio = stats.overhead_per_candidate_s / stats.scoring_per_candidate_s
        e2e = wall * 2 / stats.scoring_s - 1
        print(f"[pool] {stats.scored} candidates, 2 actors, batches of {args.batch}: {wall:.1f} s wall incl. actor "
              f"start ({stats.wall_s:.1f} s in the loop) -> {stats.wall_s / stats.scored * 1e3:.1f} ms/candidate")
        print(f"[pool] scoring {stats.scoring_per_candidate_s * 1e3:.1f} ms/candidate (in the workers); driver "
              f"overhead {stats.overhead_per_candidate_s * 1e3:.2f} ms/candidate -> ratio "
              f"{ratio:.3f} (goal <= 0.20); end to end (wall x 2 / scoring - 1, actor start included) {e2e:+.2f}")

        per = {}
        for name, fn in (("empty", empty_trial), ("supernet", supernet_trial)):
            t_exp = load_experiment(data={**base, "budget": {"samples": args.tune_candidates},
                                          "output": {"dir": tmp, "name": f"tune_{name}"}})
            start = time.perf_counter()
            outcome = run_search(t_exp, trial_fn=fn)
            per[name] = (time.perf_counter() - start) / args.tune_candidates
            assert outcome.trials == args.tune_candidates, outcome
            print(f"[tune] {args.tune_candidates} {name} trials, 2 concurrent, reused workers: "
                  f"{per[name]:.3f} s/candidate")
        ray.shutdown()
    pool_per = stats.wall_s / stats.scored
    print(f"summary: driver overhead / scoring time = {ratio:.3f} (goal <= 0.20); Ray Tune per-trial overhead "
          f"{per['empty']:.3f} s = {per['empty'] / stats.scoring_per_candidate_s:.1f}x a candidate's scoring time; "
          f"the actor pool is {per['supernet'] / pool_per:.1f}x faster per candidate than one Tune trial each")


if __name__ == "__main__":
    main()
