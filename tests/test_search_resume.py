"""kill -9 the search driver mid-run, resume it, and find every trial exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from nas.search import results
from search_helpers import small

pytestmark = pytest.mark.ray


def _nas(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "nas.cli", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_resume_after_kill_9(tmp_path):
    cfg = small(tmp_path, budget={"samples": 8})
    cfg["proxy"]["epochs"] = 2
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run_dir = Path(cfg["output"]["dir"]) / cfg["output"]["name"]
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay < 108 bytes
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1")

    first = _nas(["search", str(config)], env)
    deadline = time.time() + 240
    while time.time() < deadline and len(results.read_trials(run_dir)) < 3:
        if first.poll() is not None:
            pytest.fail(f"search ended before it could be killed:\n{first.stdout.read()}")
        time.sleep(0.2)
    done_before = {r["trial_id"] for r in results.read_trials(run_dir)}
    assert len(done_before) >= 3, "no progress within the deadline"
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray it started: a hard crash
    first.wait()

    second = _nas(["search", str(config), "--resume"], env)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    rows = results.read_trials(run_dir)
    ids = [r["trial_id"] for r in rows]
    raw_ids = [line for line in (run_dir / results.TRIALS).read_text().splitlines()]
    assert len(ids) == 8 == len(set(ids)), out          # the budget, each trial once
    assert done_before <= set(ids)                       # nothing finished before the crash is lost
    assert len(raw_ids) == 8, "a trial was recorded twice"
    assert all(r["status"] == "ok" for r in rows), rows
    assert (run_dir / "best.yaml").is_file()
    shutil.rmtree(ray_tmp, ignore_errors=True)
