"""How fast the `nas` command answers --help and --version, against `python -c pass` measured in the same run.

    python bench/cli_speed.py [--repeats 5]

Each command runs as a fresh process, interleaved with the peer, ``--repeats`` times; printed: the median wall
time and the median CPU time (user + sys of the child, steadier on a shared machine) of each, and the ratio
against ``python -c pass``.  The goal (issue 22): ``nas --help`` and ``nas <cmd> --help`` well under a second --
no command module imports torch or Ray before it runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS = [["-c", "pass"], ["-m", "nas.cli", "--help"], ["-m", "nas.cli", "--version"],
            ["-m", "nas.cli", "search", "--help"], ["-m", "nas.cli", "profile", "--help"],
            ["-m", "nas.cli", "train", "--help"], ["-m", "nas.cli", "supernet", "train", "--help"]]


def _run(args: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[tuple[float, float]]] = {" ".join(c): [] for c in COMMANDS}
    for _ in range(args.repeats):
        for command in COMMANDS:
            times[" ".join(command)].append(_run(command))
    load = os.getloadavg()[0]
    peer = statistics.median(c for _, c in times["-c pass"])
    peer_wall = statistics.median(w for w, _ in times["-c pass"])
    print(f"load average {load:.2f} on {os.cpu_count()} CPUs; median of {args.repeats} fresh processes")
    print(f"{'command':<40} {'wall s':>8} {'cpu s':>8} {'cpu / python -c pass':>22} {'wall ratio':>11}")
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        label = "python -c pass" if name == "-c pass" else "nas " + name.replace("-m nas.cli ", "")
        print(f"{label:<40} {wall:8.3f} {cpu:8.3f} {cpu / peer:22.1f} {wall / peer_wall:11.1f}")


if __name__ == "__main__":
    main()
