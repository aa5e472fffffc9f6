"""The search session's own cost per candidate, for every placement of an evaluator (CPU).

Sections (each prints a ratio against a peer measured in the same run):

* ``instant`` -- the session loop alone: an evaluator that answers at once (placement ``driver``, no Ray,
  batches of ``--instant-batch``) over ``--instant-candidates`` candidates of the MnasNet space with
  regularized evolution: candidates/s end to end (asking, telling, the write-ahead log, trials.jsonl,
  TensorBoard, the state), against the controller's bare ask/tell rate (the peer).  This is the ceiling a
  cheap evaluator (a benchmark table) reaches through the session; issue 21 asks >= 1,000/s on 2 cores.
* ``supernet`` -- the quickstart's supernet evaluator scored in the driver (``evaluator.workers: 0``), in 2
  long-lived Ray workers (batches of ``--batch``), and as one Ray Tune trial per candidate: seconds per
  candidate of each, the driver's own overhead per candidate against the scoring time (goal <= 0.20), and
  how much faster the workers are than Tune trials.

    OMP_NUM_THREADS=1 .venv/bin/python bench/search_overhead.py [--candidates 200] [--checkpoint supernet.pt]
    OMP_NUM_THREADS=1 .venv/bin/python bench/search_overhead.py --only instant

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Instant:
    """An evaluator that answers at once (the loop's ceiling): accuracy from the genotype's string length."""

    def score(self, genotypes):
        from nas.evaluators.outcome import TrialResult

        return [TrialResult(g, "ok", accuracy=(len(g) % 97) / 97, reward=(len(g) % 97) / 97, macs=1, params=1)
                for g in genotypes]


def _controller():
    from controllers import make_controller
    from search_spaces import get_space

    return make_controller("evolution", get_space("mnasnet"), seed=0, settings={"population": 32, "sample": 8})


def bench_instant(candidates: int, batch: int, tmp: str) -> None:
    from nas.search.batches import InProcessPool, PumpStats, pump_batches
    from nas.search.session import ControllerProposer, Session, run_pump

    controller = _controller()
    start = time.process_time()
    for _ in range(candidates):
        g = controller.ask()
        controller.tell(g, (len(g.to_string()) % 97) / 97)
    bare = candidates / (time.process_time() - start)
    session = Session(Path(tmp) / "instant", ControllerProposer(_controller()), candidates)
    stats = PumpStats()
    wall, cpu = time.perf_counter(), time.process_time()
    run_pump(session, lambda s: pump_batches(s, InProcessPool(Instant()), batch, stats))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"[instant] {candidates} candidates, batches of {batch}, in the driver: {candidates / wall:.0f} "
          f"candidates/s wall, {candidates / cpu:.0f}/s of CPU (summary and plots included); the controller's "
          f"bare ask/tell: {bare:.0f}/s -> the session keeps {candidates / cpu / bare:.2f} of it "
          f"(driver {stats.overhead_per_candidate_s * 1e6:.0f} us/candidate)")


def train_checkpoint(folder: str) -> str:
    import torch

    from nas.supernet import load_supernet_experiment, train_supernet

    torch.set_num_threads(1)
    exp = load_supernet_experiment(ROOT / "experiments" / "supernet_search_mnasnet.yaml", [
        "supernet.epochs=1", "data.train_limit=256", f"output.dir={folder}", "output.name=bench"])
    train_supernet(exp)
    return str(exp.checkpoint_path)


def _run(exp, pump_of):
    from nas.search.batches import PumpStats
    from nas.search.session import ControllerProposer, Session, run_pump
    from nas.experiment.search import build_controller

    stats = PumpStats()
    session = Session(exp.run_dir, ControllerProposer(build_controller(exp)), exp.budget.samples)
    start = time.perf_counter()
    run_pump(session, lambda s: pump_of(s, stats))
    return stats, time.perf_counter() - start


def bench_supernet(args, tmp: str) -> None:
    import ray

    from nas.evaluators.supernet import SupernetEvaluator
    from nas.experiment.search import load_experiment
    from nas.ray.pool import RayScoringPool
    from nas.ray.tune import pump_trials
    from nas.search.batches import InProcessPool, pump_batches
    from nas.supernet import read_checkpoint

    checkpoint = args.checkpoint or train_checkpoint(tmp)
    meta = read_checkpoint(checkpoint)["meta"]
    base = {"space": "mnasnet", "controller": {"name": "evolution", "settings": {"population": 32, "sample": 8}},
            "data": meta["data"], "proxy": meta["proxy"], "baseline": "none", "verify": {"top_k": 0},
            "evaluator": {"kind": "supernet", "checkpoint": checkpoint, "workers": 2, "batch": args.batch},
            "resources": {"cpus_per_trial": 1, "max_concurrent": 2}}

    def exp(name, n):
        return load_experiment(data={**base, "budget": {"samples": n}, "output": {"dir": tmp, "name": name}})

    driver = exp("driver", args.candidates)
    stats_d, wall_d = _run(driver, lambda s, st: pump_batches(s, InProcessPool(SupernetEvaluator.from_experiment(
        driver)), args.batch, st))
    print(f"[driver] {stats_d.scored} candidates in this process: {wall_d / stats_d.scored * 1e3:.1f} ms/candidate "
          f"(scoring {stats_d.scoring_per_candidate_s * 1e3:.1f} ms, driver {stats_d.overhead_per_candidate_s * 1e3:.2f} "
          f"ms -> ratio {stats_d.overhead_per_candidate_s / stats_d.scoring_per_candidate_s:.3f}, goal <= 0.20)")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    workers = exp("workers", args.candidates)

    def pooled(s, st):
        pool = RayScoringPool(SupernetEvaluator.from_experiment, workers)
        try:
            pump_batches(s, pool, args.batch, st)
        finally:
            pool.close()

    stats_w, wall_w = _run(workers, pooled)
    per_w = wall_w / stats_w.scored
    print(f"[workers] {stats_w.scored} candidates, 2 actors, batches of {args.batch}: {per_w * 1e3:.1f} ms/candidate "
          f"wall incl. actor start; driver {stats_w.overhead_per_candidate_s * 1e3:.2f} ms/candidate -> ratio "
          f"{stats_w.overhead_per_candidate_s / stats_w.scoring_per_candidate_s:.3f} (goal <= 0.20)")
    tune = exp("tune", args.tune_candidates)
    _, wall_t = _run(tune, lambda s, st: pump_trials(s, tune))
    per_t = wall_t / args.tune_candidates
    ray.shutdown()
    print(f"[tune] {args.tune_candidates} candidates, one Tune trial each, 2 concurrent: {per_t:.3f} s/candidate")
    print(f"summary: workers {per_t / per_w:.1f}x faster per candidate than one Tune trial each; the driver alone "
          f"{wall_d / stats_d.scored / per_w:.2f}x the workers' time per candidate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["instant", "supernet"], default=None)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--tune-candidates", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--instant-candidates", type=int, default=5000)
    parser.add_argument("--instant-batch", type=int, default=256)
    parser.add_argument("--checkpoint", default=None, help="a supernet.pt (default: train a 1-epoch one)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "instant"):
            bench_instant(args.instant_candidates, args.instant_batch, tmp)
        if args.only in (None, "supernet"):
            bench_supernet(args, tmp)


if __name__ == "__main__":
    main()
