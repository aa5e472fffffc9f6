"""Ctrl-C in every stage of a real `nas search`, for both evaluators: exit 130, the one line, and its resume.

Table-driven: for each evaluator (supernet: scored in long-lived Ray workers; proxy: one Ray Tune trial per
candidate) one run is interrupted in every stage in turn -- search, baseline, verification -- by SIGINT to the
whole process group (what Ctrl-C in a terminal sends).  Each time: exit code 130, stderr ends with the one line
naming the stage, how many of how many finished and ``nas search RUN_DIR --resume``; the summary of what
finished is written; and the command on that line, run as printed, continues the run.  The last resume runs to
the end: exactly ``budget.samples`` rows in the search and the baseline, every verification trial once, every
stage done, report.md written.  ``--resume`` on a stage folder is refused with the same command.
"""

from __future__ import annotations

import os
import re
import shlex
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
from nas.search.verify import BASELINE_DIR, VERIFY_DIR, read_stages
from search_helpers import small

pytestmark = [pytest.mark.ray, pytest.mark.training]
ROOT = Path(__file__).resolve().parents[1]
DATA = {"kind": "builtin", "holdout": 128, "train_limit": 256}
LINE = re.compile(r"^nas: (search|baseline|verify) interrupted after (\d+) of (\d+) (candidates|trials); what finished "
                  r"is kept in (\S+); continue the whole run with: (nas search \S+ --resume)$")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    import torch

    from nas.supernet import load_supernet_experiment, train_supernet

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    exp = load_supernet_experiment(data={
        "space": "tiny", "data": DATA,
        "proxy": {"resolution": 16, "stem_stride": 1, "width": 0.25, "depth": 1.0, "device": "cpu"},
        "supernet": {"epochs": 1, "batch_size": 64, "calib_batches": 1, "calib_batch_size": 64},
        "output": {"dir": str(tmp_path_factory.mktemp("sn")), "name": "sn"}})
    train_supernet(exp)
    torch.set_num_threads(before)
    return str(exp.checkpoint_path)


def _config(tmp_path: Path, evaluator: str, checkpoint: str) -> tuple[Path, Path, dict]:
    if evaluator == "supernet":  # one worker, one candidate a call: a stage of seconds, long enough to interrupt
        ev, samples = {"kind": "supernet", "checkpoint": checkpoint, "workers": 1, "batch": 1}, 120
    else:
        ev, samples = {"kind": "proxy"}, 4
    cfg = small(tmp_path, budget={"samples": samples}, data=dict(DATA), evaluator=ev, baseline="random",
                verify={"top_k": 1, "seeds": [0, 1], "reference": "b0"}, resources={"max_concurrent": 1})
    cfg["proxy"].update(resolution=16, stem_stride=1, epochs=1)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return config, Path(cfg["output"]["dir"]) / cfg["output"]["name"], cfg


def _start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nas.cli", *argv], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _folder(run_dir: Path, stage: str) -> Path:
    return {"search": run_dir, "baseline": run_dir / BASELINE_DIR, "verify": run_dir / VERIFY_DIR}[stage]


def _interrupt_in(proc: subprocess.Popen, run_dir: Path, stage: str, deadline_s: float = 400) -> tuple[str, str]:
    """Ctrl-C once ``stage`` has recorded its first row (and is still running); returns (stdout, stderr)."""
    folder = _folder(run_dir, stage)
    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline and not results.read_trials(folder):
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"nas search ended before its {stage} stage could be interrupted:\n{out}\n{err}")
            time.sleep(0.05)
        assert results.read_trials(folder), f"the {stage} stage recorded nothing within {deadline_s} s"
        os.killpg(proc.pid, signal.SIGINT)
        return proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("evaluator", ["supernet", "proxy"])
def test_ctrl_c_in_every_stage_prints_the_one_line_and_its_command_finishes_the_run(evaluator, tmp_path, checkpoint):
    config, run_dir, cfg = _config(tmp_path, evaluator, checkpoint)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay < 108 bytes
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    samples = cfg["budget"]["samples"]
    argv = ["search", str(config)]
    try:
        for stage in ("search", "baseline", "verify"):
            out, err = _interrupt_in(_start(argv, env), run_dir, stage)
            lines = [line for line in err.strip().splitlines() if line.strip()]
            match = LINE.match(lines[-1]) if lines else None
            assert match, f"{stage}: stderr does not end with the one line:\n{err[-3000:]}"
            assert "Traceback" not in err, err[-3000:]
            got_stage, done, total, unit, kept, command = match.groups()
            rows = results.read_trials(_folder(run_dir, stage))
            assert got_stage == stage and int(done) == len(rows) and Path(kept) == run_dir, lines[-1]
            plan = read_stages(run_dir).get("verify") or []
            assert int(total) == (samples if stage != "verify" else len(plan) * 2)
            assert unit == ("trials" if stage == "verify" else "candidates")
            assert 1 <= len(rows) < int(total), f"{stage} was not interrupted mid-stage: {len(rows)} of {total}"
            assert (_folder(run_dir, stage) / results.BEST).is_file()  # the summary of what finished
            assert "\ndone:" not in out and "Tuner.restore" not in out + err  # only the `nas` way to continue
            assert "You are trying to log an invalid value" not in err  # Tune's TensorBoard logger fed no list
            assert stage not in read_stages(run_dir).get("done", [])
            refused = subprocess.run([sys.executable, "-m", "nas.cli", "search", str(_folder(run_dir, "baseline")),
                                      "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            if stage != "search":  # the stage folder exists: resuming it alone is refused with the same command
                assert refused.returncode == 2 and refused.stderr.strip().endswith(command), refused.stderr
            argv = shlex.split(command)[1:]  # the command as printed: `nas search RUN_DIR --resume`
        final = subprocess.run([sys.executable, "-m", "nas.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=600)
        assert final.returncode == 0, final.stdout[-3000:] + final.stderr[-3000:]
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    _check_complete(run_dir, samples)


def _check_complete(run_dir: Path, samples: int) -> None:
    for folder in (run_dir, run_dir / BASELINE_DIR):
        rows = results.read_trials(folder)
        lines = (folder / results.TRIALS).read_text().splitlines()
        assert len(rows) == len(lines) == samples == len({r["trial_id"] for r in rows})  # the budget, exactly
    plan = read_stages(run_dir)["verify"]
    verified = results.read_trials(run_dir / VERIFY_DIR)
    pairs = [(r["genotype"], r["seed"]) for r in verified]
    assert len(pairs) == len(set(pairs)) == len(plan) * 2  # every genotype once per seed
    assert set(read_stages(run_dir)["done"]) == {"search", "baseline", "verify"}
    assert (run_dir / "report.md").is_file()
