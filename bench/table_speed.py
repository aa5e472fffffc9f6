"""The table evaluator through the search session, end to end (CPU; issue 21 asks >= 1,000 candidates/s on 2 cores).

For each controller (``--controllers``, default evolution and random) a search of ``--candidates``
candidates over the ``nas-bench-macro`` space scored by ``evaluator: table`` (NAS-Bench-Macro, one
recorded run a candidate, placement ``driver``, batches of ``--batch``) runs through the one session
loop -- asking, telling, the write-ahead log, trials.jsonl, TensorBoard, the resume state, the summary
(a 64-candidate warm-up search first pays the process's imports once) -- and its
candidates/s are printed against the peer measured in the same run: the bare table lookup of the same
candidates (parse, network key, record), without cost, reward, controller or recorder.  Wall-time rates
move with the machine's load; the rate per CPU-second of the process (also printed) does not.

    OMP_NUM_THREADS=1 .venv/bin/python bench/table_speed.py [--candidates 3000] [--batch 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _experiment(folder: str, controller: str, candidates: int, batch: int):
    from nas.experiment.search import load_experiment

    return load_experiment(data={
        "space": "nas-bench-macro", "controller": {"name": controller.replace("warm-up", "random"), "seed": 0},
        "objective": {"cost": "macs", "target": 3.0e7, "w": -0.07}, "target": {"resolution": 32, "num_classes": 10},
        "evaluator": {"kind": "table", "table": "nas-bench-macro", "batch": batch}, "baseline": "none",
        "verify": {"top_k": 0}, "budget": {"samples": candidates}, "output": {"dir": folder, "name": controller}})


def bare_lookups(texts: list[str]) -> float:
    """Candidates/s of the lookup alone: parse, network key, the table's record."""
    from search_spaces import Genotype
    from nas.evaluators.table import cached_table

    table = cached_table("nas-bench-macro")
    start = time.perf_counter()
    for text in texts:
        table.lookup(Genotype.from_string(text))
    return len(texts) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--controllers", nargs="+", default=["evolution", "random"])
    args = parser.parse_args(argv)

    from nas.evaluators.table import cached_table
    from nas.search import results
    from nas.search.stages import run_search_stage

    cached_table("nas-bench-macro")  # loaded once per process, as in a search
    with tempfile.TemporaryDirectory() as folder:
        run_search_stage(_experiment(folder, "warm-up", 64, args.batch))  # imports (TensorBoard, ...) paid once
        for name in args.controllers:
            exp = _experiment(folder, name, args.candidates, args.batch)
            start, cpu = time.perf_counter(), time.process_time()
            run_search_stage(exp)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            rows = results.read_trials(exp.run_dir)
            rate = len(rows) / wall
            peer = bare_lookups([r["genotype"] for r in rows])
            print(f"{name:10s} {len(rows)} candidates through the session in {wall:.2f} s: {rate:,.0f} candidates/s "
                  f"end to end ({len(rows) / cpu:,.0f} per CPU-second of the process); bare table lookup "
                  f"{peer:,.0f}/s; ratio session/bare {rate / peer:.3f}"
                  f"  [per CPU-second {'>=' if len(rows) / cpu >= 1000 else 'BELOW'} 1,000]")


if __name__ == "__main__":
    main()
