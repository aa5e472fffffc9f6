"""Latency tables that know their noise: a table profiled on a deliberately loaded CPU says so, a quiet one does not.

The measurement is pinned to the first CPU this process may use.  "Loaded": three busy-loop processes pinned to
that same CPU, so the measuring thread gets about a quarter of it whatever else runs on the machine.  "Quiet":
the same profile at real-time priority (``chrt -f 1``), so no other process on this shared machine can take its
CPU; skipped where real-time priority is not allowed.  Both are real `nas profile` processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ["profile", "--target", "cpu", "--threads", "1", "--space", "tiny", "--resolution", "32", "--samples", "2",
           "--calibrate", "0", "--rounds", "3", "--repeats", "8"]
BUSY = "import os, sys; os.sched_setaffinity(0, {int(sys.argv[1])})\nwhile True:\n    pass\n"


def _profile(tmp_path: Path, prefix: list[str] = ()) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "lut.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([*prefix, sys.executable, "-m", "nas.cli", *PROFILE, "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done, json.loads(out.read_text())


def test_a_table_profiled_on_a_loaded_cpu_says_so(tmp_path):
    cpu = sorted(os.sched_getaffinity(0))[0]  # where `nas profile --threads 1` pins its measuring thread
    busy = [subprocess.Popen([sys.executable, "-c", BUSY, str(cpu)]) for _ in range(3)]
    try:
        done, table = _profile(tmp_path)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("WARNING: measured while the machine was busy"), done.stdout
    noise = table["target"]["noise"]
    assert noise["busy"] and noise["noisy_share"] > 0.2 and noise["cpu_share"] < 0.9, noise
    assert sum(e.get("noisy", False) for e in table["entries"]) == noise["noisy"] > 0  # per entry, in the file
    assert all("cpu_share" in e and "iqr_ms" in e for e in table["entries"])  # every entry keeps its spread


def test_a_quiet_profile_has_no_warning(tmp_path):
    chrt = shutil.which("chrt")
    if chrt is None or subprocess.run([chrt, "-f", "1", "true"], capture_output=True).returncode != 0:
        pytest.skip("real-time priority (chrt -f) is not allowed here: no CPU of this shared machine is quiet")
    done, table = _profile(tmp_path, [chrt, "-f", "1"])
    assert "WARNING" not in done.stdout, done.stdout
    noise = table["target"]["noise"]
    assert not noise["busy"] and noise["cpu_share"] >= 0.9, noise
    assert done.stdout.strip().splitlines()[-1].startswith("noise: "), done.stdout
    validate = subprocess.run([chrt, "-f", "1", sys.executable, "-m", "nas.cli", "profile", "--validate",
                               str(tmp_path / "lut.json"), "--genotypes", "3", "--measure-missing"], cwd=ROOT,
                              env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "mean abs relative error" in validate.stdout
    assert "measurement noise: " in validate.stdout and "validation models noisy" in validate.stdout


def test_the_table_share_weighs_entries_by_their_wall_time():
    """Most tiny entries fit in one scheduler slice (share 1.0) while the long ones waited: the median says
    quiet, the time on the whole says busy -- and the table is called busy."""
    from nas.cost.latency.measure import Measurement, noise_summary

    tiny = [Measurement(0.05, 0.001, 0.001, 0.05, 24, 1.0) for _ in range(8)]  # no total_ms: median x repeats
    long = [Measurement(5.0, 0.2, 0.2, 4.8, 24, 0.3) for _ in range(2)]
    noise = noise_summary(tiny + long)
    assert noise["median_cpu_share"] == 1.0 and noise["noisy_share"] == 0.2  # neither rule alone would say busy
    assert abs(noise["cpu_share"] - (8 * 0.05 + 2 * 5.0 * 0.3) / (8 * 0.05 + 2 * 5.0)) < 1e-9
    assert noise["busy"]
    assert not noise_summary(tiny + long, clock="cpu")["busy"]  # the CPU clock leaves waiting out
    assert not noise_summary(tiny)["busy"] and noise_summary(tiny)["cpu_share"] == 1.0
