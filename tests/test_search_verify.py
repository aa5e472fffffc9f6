"""Search, equal-budget random baseline and verification, end to end, for both evaluators (one local Ray).

The supernet is a real one of the tiny space (one short epoch on 256 built-in images); verification is real
standalone proxy training (one epoch, 16x16).  Also: ``nas results`` without Ray, and resume after SIGKILL of a
``nas search`` process mid-verification.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from nas.experiment.search import load_experiment
from nas.search import results
from nas.search.report import PLOTS, REPORT
from nas.search.verify import BASELINE_DIR, VERIFY_DIR, read_stages
from search_helpers import small

pytestmark = [pytest.mark.ray, pytest.mark.training]
DATA = {"kind": "builtin", "holdout": 128, "train_limit": 256}
ROOT = Path(__file__).resolve().parents[1]


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


def _config(tmp_path: Path, evaluator: dict, samples: int, top_k: int = 2, seeds=(0, 1), name="t",
            reference: str | None = "b0") -> dict:
    cfg = small(tmp_path, budget={"samples": samples}, data=dict(DATA), evaluator=evaluator, baseline="random",
                verify={"top_k": top_k, "seeds": list(seeds), "reference": reference})
    cfg["output"]["name"] = name
    return cfg


def _check_stages(run_dir: Path, samples: int, top_k: int, seeds, reference: bool = True) -> dict:
    search, base = results.read_trials(run_dir), results.read_trials(run_dir / BASELINE_DIR)
    assert len(search) == samples and len(base) == samples  # equal budgets, exactly
    assert len({r["trial_id"] for r in search}) == samples
    assert yaml.safe_load((run_dir / BASELINE_DIR / results.CONFIG).read_text())["controller"]["name"] == "random"
    cfg = yaml.safe_load((run_dir / results.CONFIG).read_text())
    assert yaml.safe_load((run_dir / BASELINE_DIR / results.CONFIG).read_text())["controller"]["seed"] == \
        cfg["controller"]["seed"]
    plan = read_stages(run_dir)["verify"]
    roles = [role for p in plan for role in p["roles"]]
    assert [r for r in roles if r.startswith("search")] == [f"search #{i}" for i in range(1, top_k + 1)]
    assert [r for r in roles if r.startswith("baseline")] == [f"baseline #{i}" for i in range(1, top_k + 1)]
    assert ("reference" in roles) == reference
    best = max(results.ok_rows(search), key=lambda r: r["reward"])
    assert plan[0]["genotype"] == best["genotype"]  # the search's top genotype by search reward
    verified = results.read_trials(run_dir / VERIFY_DIR)
    pairs = [(r["genotype"], r["seed"]) for r in verified]
    assert len(pairs) == len(set(pairs)) == len(plan) * len(seeds)  # every genotype once per seed
    assert {s for _, s in pairs} == set(seeds)
    assert set(read_stages(run_dir)["done"]) == {"search", "baseline", "verify"}
    return {"search": search, "baseline": base, "verified": verified, "plan": plan}


def test_supernet_evaluator_search_baseline_and_verification(tmp_path, checkpoint, local_ray, capsys):
    from nas.cli import main
    from nas.search.stages import run_pipeline

    cfg = _config(tmp_path, {"kind": "supernet", "checkpoint": checkpoint, "workers": 2, "batch": 4}, samples=30,
                  top_k=1)
    exp = load_experiment(data=cfg)
    summary = run_pipeline(exp)
    run_dir = exp.run_dir
    got = _check_stages(run_dir, 30, 1, (0, 1))
    assert all(r["epochs"] == 0 for r in got["search"])  # scored by the supernet, not trained
    assert all(r["epochs"] == 1 for r in got["verified"] if r["status"] == "ok")  # retrained standalone
    assert (run_dir / "search_state.json").is_file() and (run_dir / BASELINE_DIR / "search_state.json").is_file()
    for name in (REPORT, *PLOTS, results.BEST, results.PARETO_CSV):
        assert (run_dir / name).is_file(), name
    report = (run_dir / REPORT).read_text()
    assert "| roles | search reward | verified reward |" in report and "search #1" in report
    assert "median" not in report
    c = summary["compare"]
    assert c["search"] is not None and c["baseline"] is not None and c["reference"] is not None
    # nas results: the same summary from the files, without Ray
    capsys.readouterr()
    assert main(["results", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "search: 30 candidates" in out and "baseline: 30 candidates" in out and "verified best" in out
    assert ("verified gain:" in out) == c["verified_gain"]
    assert "median" not in out


def test_proxy_evaluator_search_baseline_and_verification(tmp_path, local_ray):
    from nas.search.stages import run_pipeline

    cfg = _config(tmp_path, {"kind": "proxy"}, samples=2, top_k=1, seeds=(0, 1), reference=None)
    exp = load_experiment(data=cfg)
    run_pipeline(exp)
    got = _check_stages(exp.run_dir, 2, 1, (0, 1), reference=False)
    assert all(r["epochs"] == 1 for r in got["search"] + got["baseline"] if r["status"] == "ok")


def test_results_runs_without_ray_on_an_interrupted_run(tmp_path):
    """Only the search stage on disk (as after a kill before the baseline): summary prints, no Ray imported."""
    run_dir = tmp_path / "run"
    for i in range(3):
        results.append_trial(run_dir, {"trial_id": f"c{i:05d}", "index": i, "status": "ok" if i else "failed",
                                       "genotype": "b0", "reward": 0.1 * i, "accuracy": 0.1 * i, "macs": 1e6,
                                       "params": 1, "reason": "" if i else "boom"})
    code = ("import sys; from nas.cli import main; rc = main(['results', %r]); "
            "print('RAY' if 'ray' in sys.modules else 'NO-RAY'); sys.exit(rc)" % str(run_dir))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "search: 3 candidates (1 failed), best search reward 0.2000" in done.stdout
    assert "baseline: not run" in done.stdout and "no verified gain is claimed" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "NO-RAY"
    missing = subprocess.run([sys.executable, "-m", "nas.cli", "results", str(tmp_path / "nope")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr


def test_resume_after_kill_9_mid_verification(tmp_path, checkpoint):
    cfg = _config(tmp_path, {"kind": "supernet", "checkpoint": checkpoint, "workers": 2, "batch": 4},
                  samples=16, top_k=1, seeds=(0, 1), name="killed")
    cfg["proxy"]["epochs"] = 2
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run_dir = Path(cfg["output"]["dir"]) / "killed"
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay < 108 bytes
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=ray_tmp, PYTHONUNBUFFERED="1")

    def nas(*args):
        return subprocess.Popen([sys.executable, "-m", "nas.cli", *args], env=env, cwd=ROOT, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = nas("search", str(config))
    deadline = time.time() + 300
    while time.time() < deadline and not results.read_trials(run_dir / VERIFY_DIR):
        if first.poll() is not None:
            pytest.fail(f"search ended before it could be killed:\n{first.stdout.read()}")
        time.sleep(0.2)
    verified_before = {r["trial_id"] for r in results.read_trials(run_dir / VERIFY_DIR)}
    assert verified_before, "verification made no progress within the deadline"
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray it started: a hard crash
    first.wait()
    plan = copy.deepcopy(read_stages(run_dir)["verify"])
    assert read_stages(run_dir)["done"] == ["baseline", "search"]

    second = nas("search", str(run_dir), "--resume")
    out, _ = second.communicate(timeout=400)
    assert second.returncode == 0, out
    assert read_stages(run_dir)["verify"] == plan  # the same genotypes verified
    got = _check_stages(run_dir, 16, 1, (0, 1))
    assert verified_before <= {r["trial_id"] for r in got["verified"]}  # nothing finished before is lost
    lines = (run_dir / VERIFY_DIR / results.TRIALS).read_text().splitlines()
    assert len(lines) == len(got["verified"]), "a verification trial was recorded twice"
    assert "verified best of the search" in out and (run_dir / REPORT).is_file()
    import shutil

    shutil.rmtree(ray_tmp, ignore_errors=True)
