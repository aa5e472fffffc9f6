"""Every user mistake: exit code 2, exactly one line on stderr, no traceback, before any slow work.

Table-driven: each case builds its bad input in a fresh folder and gives the argv and a piece of
the expected line (naming the field or the fix).  Run in-process through ``nas.cli.main`` (fast);
the few that need a fresh process (log lines on stderr, a missing package) run as a subprocess.
None of them imports Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from nas.cli import main
from search_helpers import small

UNWRITABLE = "/sys/effnas-unwritable"  # a read-only file system, even for root


def _exp(tmp: Path, **sections) -> str:
    path = tmp / "exp.yaml"
    path.write_text(yaml.safe_dump(small(tmp, **sections)))
    return str(path)


def _trial_yaml(tmp: Path, text: str) -> str:
    path = tmp / "trial.yaml"
    path.write_text(text)
    return str(path)


def _npz(tmp: Path, **arrays) -> str:
    rng = np.random.default_rng(0)
    base = {"x_train": rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8), "y_train": np.arange(40) % 4,
            "x_test": rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8), "y_test": np.arange(8) % 4}
    base.update(arrays)
    path = tmp / "data.npz"
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return str(path)


def _text_file(tmp: Path, name: str) -> str:
    path = tmp / name
    path.write_text("these are not arrays\n")
    return str(path)


def _dup_keys(tmp: Path) -> str:
    path = tmp / "dup.yaml"
    path.write_text(yaml.safe_dump(small(tmp)) + "budget:\n  samples: 4\n")
    return str(path)


def _finished_run(tmp: Path) -> Path:
    """A run dir as `nas search` leaves it (config.yaml and trials.jsonl; no Tune state needed here)."""
    from nas.experiment.load import resolved_yaml
    from nas.experiment.search import load_experiment

    exp = load_experiment(data=small(tmp, budget={"samples": 3}))
    exp.run_dir.mkdir(parents=True)
    (exp.run_dir / "config.yaml").write_text(resolved_yaml(exp))
    row = {"trial_id": "a", "index": 0, "genotype": "r1_k3_s11_e1_i32_o16_se0.25", "status": "ok",
           "reward": 0.5, "accuracy": 0.5, "macs": 1, "params": 1}
    (exp.run_dir / "trials.jsonl").write_text(json.dumps(row) + "\n")
    return exp.run_dir


def _not_state_dict(tmp: Path) -> str:
    import torch

    path = tmp / "weights.pt"
    torch.save([1, 2, 3], path)
    return str(path)


def _latency_table(tmp: Path) -> str:
    path = tmp / "lut.json"
    path.write_text("{not json")
    return str(path)


def _file(tmp: Path) -> str:
    path = tmp / "a_file"
    path.write_text("x")
    return str(path)


def _checkpoint(tmp: Path, width: float = 0.25, drop: tuple[str, ...] = (), bad_tensor: bool = False) -> str:
    """A (untrained) supernet checkpoint that fits ``small()``'s experiment -- unless told otherwise."""
    import torch

    from efficientnet.supernet import Supernet
    from nas.config import to_dict
    from nas.data import DataConfig
    from nas.experiment.proxy import ProxyConfig
    from nas.experiment.supernet import SupernetConfig
    from nas.supernet.checkpoint import save_checkpoint
    from search_spaces import get_space

    net = Supernet(get_space("tiny"), width=width, depth=1.0, resolution=16, stem_stride=1, num_classes=10)
    cfg = small(tmp)
    meta = {"space": "tiny", "arch": dict(net.options), "data": to_dict(DataConfig(**cfg["data"])),
            "proxy": to_dict(ProxyConfig(**cfg["proxy"])), "supernet": to_dict(SupernetConfig()), "epoch": 1,
            "epochs": 1, "history": []}
    for key in drop:
        meta.pop(key)
    path = tmp / "supernet.pt"
    save_checkpoint(path, net, None, meta)
    if bad_tensor:
        payload = torch.load(path, weights_only=True)
        name = next(k for k, v in payload["model"].items() if v.dim() == 4)
        payload["model"][name] = torch.zeros(3, 3, 3, 3)
        torch.save(payload, path)
    return str(path)


def _loop(tmp: Path, name: str = "loop") -> str:
    """A symlink loop: ``name`` -> ``name``.2 -> ``name``."""
    import os

    os.symlink(tmp / f"{name}.2", tmp / name)
    os.symlink(tmp / name, tmp / f"{name}.2")
    return str(tmp / name)


def _supernet_exp(tmp: Path, checkpoint: str, **sections) -> str:
    return _exp(tmp, evaluator={"kind": "supernet", "checkpoint": checkpoint, "workers": 1}, **sections)


def _stage_folder(tmp: Path) -> str:
    run_dir = _finished_run(tmp)
    (run_dir / "stages.json").write_text(json.dumps({"done": ["search"], "verify": None}))
    (run_dir / "baseline").mkdir()
    (run_dir / "baseline" / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    return str(run_dir / "baseline")


def _weights(tmp: Path, obj) -> str:
    import torch

    path = tmp / "w.pt"
    torch.save(obj, path)
    return str(path)


def _train_yaml(tmp: Path) -> str:
    path = tmp / "train.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 1, "batch_size": 32}, "data": {"kind": "builtin"},
                                    "output": {"dir": str(tmp / "runs"), "name": "t"}}))
    return str(path)


def _table_exp(tmp: Path, table: str, **sections) -> str:
    return _exp(tmp, evaluator={"kind": "table", "table": table}, **sections)


def _user_table(tmp: Path, genotype: str = "b0") -> str:
    path = tmp / "table.json"
    path.write_text(json.dumps({"format": "effnas-table/1", "networks": {genotype: {"accuracy": [0.9, 0.91]}}}))
    return str(path)


def _export(t: Path, *extra: str) -> list[str]:
    return ["export", "b0", "--resolution", "32", "--onnx", str(t / "m.onnx"), *extra]


#: (id, argv builder, a piece of the expected line)
CASES = [
    # output paths, checked before the work starts
    ("run dir unwritable", lambda t: ["search", _exp(t), "--set", f"output.dir={UNWRITABLE}"],
     "output.dir: cannot write the run dir"),
    ("output.dir is a file", lambda t: ["search", _exp(t), "--set", f"output.dir={_file(t)}"],
     "output.dir: "),
    ("export --onnx unwritable", lambda t: ["export", "b0", "--onnx", f"{UNWRITABLE}/m.onnx"], "ONNX"),
    ("export --onnx is a folder", lambda t: ["export", "b0", "--onnx", str(t)], "is a directory"),
    ("profile --out unwritable", lambda t: ["profile", "--target", "cpu", "--out", f"{UNWRITABLE}/lut.json"],
     "--out"),
    # malformed inputs
    ("--weights not a state dict", lambda t: ["export", "b0", "--resolution", "32", "--onnx", str(t / "m.onnx"),
                                              "--weights", _not_state_dict(t)], "expected a state dict"),
    ("controller.max_tries 0", lambda t: ["search", _exp(t), "--set", "controller.max_tries=0"],
     "controller.max_tries must be an integer > 0, got 0"),
    ("controller.max_tries < 0", lambda t: ["search", _exp(t), "--set", "controller.max_tries=-3",
                                           "--set", "controller.cost_max=1e12"], "controller.max_tries"),
    ("duplicate YAML key", lambda t: ["search", _dup_keys(t)], "key 'budget' is given twice"),
    ("ray.dashboard without packages", lambda t: ["search", _exp(t), "--set", "ray.dashboard=true"],
     "pip install 'ray[default]'"),
    ("export ''", lambda t: ["export", "", "--onnx", str(t / "m.onnx")], "genotype"),
    ("scale ''", lambda t: ["scale", ""], "genotype"),
    ("show ''", lambda t: ["show", ""], "genotype"),
    ("config is a folder", lambda t: ["search", str(t)], "is a folder"),
    ("train-proxy config is a folder", lambda t: ["train-proxy", "b0", "--config", str(t)], "is a folder"),
    ("npz path is a folder", lambda t: ["search", _exp(t, data={"kind": "npz", "path": str(t)})], "data.path"),
    ("text file as .npz", lambda t: ["search", _exp(t, data={"kind": "npz", "path": _text_file(t, "x.npz")})],
     "not a readable .npz"),
    # checked before Ray starts (each would fail every trial)
    ("data.holdout > data", lambda t: ["search", _exp(t, data={"holdout": 5000, "train_limit": None})],
     "data.holdout"),
    ("proxy.device cuda without a GPU", lambda t: ["search", _exp(t, proxy={"device": "cuda"})], "proxy.device"),
    ("npz missing arrays", lambda t: ["search", _exp(t, data={"kind": "npz", "path": _npz(t, y_test=None)})],
     "lacks y_test"),
    ("npz float images", lambda t: ["search", _exp(t, data={
        "kind": "npz", "path": _npz(t, x_train=np.zeros((40, 8, 8, 3), np.float32))})], "uint8"),
    ("latency table does not load", lambda t: ["search", _exp(t, objective={
        "cost": "latency", "target": 10.0, "latency_table": _latency_table(t)})], "objective.latency_table"),
    # cluster and resume
    ("--address with nothing listening", lambda t: ["search", _exp(t), "--address", "127.0.0.1:1",
                                                    "--set", "ray.connect_timeout_s=1"], "no Ray cluster answered"),
    ("resume changes the recipe", lambda t: ["search", str(_finished_run(t)), "--resume", "--set",
                                             "proxy.epochs=4"], "proxy.epochs differ"),
    ("resume shrinks the budget", lambda t: ["search", str(_finished_run(t)), "--resume", "--set",
                                             "budget.samples=2"], "budget.samples may only grow"),
    ("resume where no search is", lambda t: ["search", _exp(t), "--resume"], "--resume: no search at"),
    ("run dir without --resume", lambda t: ["search", str(_finished_run(t))], "is a folder"),
    ("--resume on a stage folder", lambda t: ["search", _stage_folder(t), "--resume"],
     "is the baseline stage of the run"),
    # values out of range, checked at load
    ("target.width 100", lambda t: ["search", _exp(t, target={"width": 100})],
     "target: width multiplier must be in (0, 8], got 100"),
    ("target.resolution 100000", lambda t: ["search", _exp(t, target={"resolution": 100000})],
     "target: resolution must be in [8, 4096] pixels"),
    ("proxy.resolution 100000", lambda t: ["search", _exp(t, proxy={"resolution": 100000})],
     "proxy.resolution must be in [8, 4096] pixels"),
    ("budget.samples 0", lambda t: ["search", _exp(t, budget={"samples": 0})], "budget.samples must be an integer >= 1"),
    ("resources.max_concurrent 0", lambda t: ["search", _exp(t, resources={"max_concurrent": 0})],
     "resources.max_concurrent must be an integer >= 1"),
    ("evaluator.device gpu", lambda t: ["search", _exp(t), "--set", "evaluator.device=gpu"],
     "evaluator.device must be auto, cpu, cuda or cuda:N"),
    ("nas train --phi 100", lambda t: ["train", "b0", _train_yaml(t), "--phi", "100"],
     "--phi 100: width multiplier must be in (0, 8], got 13780.6"),
    ("nas train --model b99", lambda t: ["train", "b0", _train_yaml(t), "--model", "efficientnet-b99"],
     "model.name must be one of efficientnet-b0, efficientnet-b1"),
    ("nas show --model b99", lambda t: ["show", "b0", "--model", "b99"], "is not a model of the coefficient table"),
    # paths that are not what they must be: the message says what they are
    ("config is a symlink loop", lambda t: ["search", _loop(t)], "is a symlink loop"),
    ("cifar10 data.path is a file", lambda t: ["search", _exp(t, data={"kind": "cifar10", "path": _file(t)})],
     "is a file; fix the path"),
    # a supernet checkpoint, checked against the experiment before Ray starts
    ("evaluator.checkpoint is a symlink loop", lambda t: ["search", _supernet_exp(t, _loop(t, "sn.pt"))],
     "is a symlink loop"),
    ("evaluator.checkpoint is a folder", lambda t: ["search", _supernet_exp(t, str(t))], "is a folder"),
    ("evaluator.checkpoint is not a checkpoint", lambda t: ["search", _supernet_exp(t, _text_file(t, "s.pt"))],
     "is not a supernet checkpoint"),
    ("checkpoint without metadata keys", lambda t: ["search", _supernet_exp(t, _checkpoint(t, drop=("history",)))],
     "its metadata lacks history"),
    ("checkpoint tensors of other sizes", lambda t: ["search", _supernet_exp(t, _checkpoint(t, bad_tensor=True))],
     "has shape [3, 3, 3, 3] but the recorded sizes"),
    ("supernet of another width", lambda t: ["search", _supernet_exp(t, _checkpoint(t, width=0.5))],
     "proxy: the supernet was trained at width 0.5 (experiment: proxy.width 0.25)"),
    ("evaluator.kind supernet without checkpoint", lambda t: ["search", _exp(t, evaluator={"kind": "supernet"})],
     "evaluator.checkpoint: required with evaluator.kind 'supernet'"),
    ("supernet eval of tensors of other sizes", lambda t: ["supernet", "eval", _checkpoint(t, bad_tensor=True), "b0"],
     "has shape [3, 3, 3, 3]"),
    # a benchmark table (evaluator: table), checked before the search
    ("evaluator.table unknown name", lambda t: ["search", _table_exp(t, "nas-bench-999")],
     "evaluator.table: table 'nas-bench-999' does not exist; give a .json or .csv file or one of: nas-bench-macro"),
    ("evaluator.table missing", lambda t: ["search", _exp(t, evaluator={"kind": "table"})],
     "evaluator.table: required with evaluator.kind 'table'"),
    ("evaluator.table not JSON", lambda t: ["search", _table_exp(t, _text_file(t, "t.json"))],
     "not valid JSON"),
    ("evaluator.table of another space", lambda t: ["search", _table_exp(t, "nas-bench-macro")],
     "is a benchmark of space 'nas-bench-macro', the experiment searches 'tiny'"),
    ("evaluator.table keys not of the space", lambda t: ["search", _table_exp(t, _user_table(t))],
     "is not in space 'tiny'"),
    ("evaluator.sample bad", lambda t: ["search", _table_exp(t, "nas-bench-macro"), "--set", "evaluator.sample=median"],
     "evaluator.sample"),
    ("evaluator.table with kind proxy", lambda t: ["search", _exp(t, evaluator={"table": "nas-bench-macro"})],
     "evaluator.table: only used with evaluator.kind 'table'"),
    ("verify.truth table without a table", lambda t: ["search", _exp(t), "--set", "verify.truth=table"],
     "verify.truth: table, but space 'tiny' has no shipped benchmark table"),
    # weights that are not a state dict of the genotype
    ("--weights a text file", lambda t: _export(t, "--weights", _text_file(t, "w.pt")),
     "is not a torch.save'd state dict"),
    ("--weights not tensors", lambda t: _export(t, "--weights", _weights(t, {"a": 1})),
     "expected a state dict of tensors, but 'a' is a int"),
    ("--weights a folder", lambda t: _export(t, "--weights", str(t)), "is a folder"),
    ("--weights a symlink loop", lambda t: _export(t, "--weights", _loop(t, "w.pt")), "is a symlink loop"),
    ("--weights of another model", lambda t: _export(t, "--weights", _weights(t, {"conv.weight": __import__(
        "torch").zeros(1)})), "the weights do not fit this model"),
]

#: Cases that need a machine without CUDA (they check that a cuda device is refused there).
NO_CUDA = [
    ("evaluator.device cuda without a GPU", lambda t: ["search", _supernet_exp(t, _checkpoint(t)), "--set",
                                                       "evaluator.device=cuda"],
     "evaluator.device: cuda, but this machine has no CUDA GPU"),
    ("supernet train proxy.device cuda without a GPU", lambda t: ["supernet", "train", _supernet_yaml(t), "--set",
                                                                  "proxy.device=cuda"],
     "proxy.device: cuda, but this machine has no CUDA GPU"),
]


def _supernet_yaml(tmp: Path) -> str:
    path = tmp / "sn.yaml"
    cfg = small(tmp)
    path.write_text(yaml.safe_dump({"space": "tiny", "data": cfg["data"], "proxy": cfg["proxy"],
                                    "supernet": {"epochs": 1, "batch_size": 64}, "output": cfg["output"]}))
    return str(path)


def _params():
    import importlib.util

    from nas.experiment.search import DASHBOARD_PACKAGES

    import torch

    have_dashboard = all(importlib.util.find_spec(m) for m in DASHBOARD_PACKAGES)
    for name, build, expected in CASES + NO_CUDA:
        marks = [pytest.mark.skip(reason="the dashboard packages are installed here")] \
            if "dashboard" in name and have_dashboard else []
        if (name, build, expected) in NO_CUDA and torch.cuda.is_available():
            marks = [pytest.mark.skip(reason="this machine has a CUDA GPU")]
        yield pytest.param(build, expected, id=name, marks=marks)


@pytest.mark.parametrize("build, expected", list(_params()))
def test_bad_input_is_one_clean_line(build, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = build(tmp_path)
    capsys.readouterr()
    started = time.monotonic()
    code = main(argv)
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("nas: error: ") and expected in lines[0], lines[0]
    assert elapsed < 15, f"{elapsed:.1f} s: the check is not before the slow work"
    assert not ("ray" in sys.modules and sys.modules["ray"].is_initialized()), "Ray was started"


def test_joining_a_cluster_gives_up_within_30_s_by_default():
    from nas.experiment.sections import RayConfig

    assert RayConfig().connect_timeout_s <= 30


def _cli(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *argv], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def test_train_proxy_error_is_the_only_stderr_line(tmp_path):
    """Its INFO log line (sections it ignores) must not come before the error (a fresh process logs to stderr)."""
    config = _exp(tmp_path, data={"kind": "npz", "path": str(tmp_path / "missing.npz")})
    run = _cli("train-proxy", "b0", "--config", config)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "missing.npz" in lines[0], run.stderr


@pytest.mark.parametrize("name", ["--address with nothing listening", "latency table does not load"])
def test_in_a_fresh_process_too_the_error_is_the_only_stderr_line(name, tmp_path):
    """No log line (what the checks loaded) comes before the error in a real `nas` process."""
    build, expected = {n: (b, e) for n, b, e in CASES}[name]
    run = _cli(*build(tmp_path))
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and expected in lines[0], run.stderr


def test_onnx_export_without_onnx_names_the_extra(tmp_path):
    """A plain install (no onnx): one line naming `pip install 'effnas[onnx]'`."""
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "onnx.py").write_text("raise ImportError('No module named onnx')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", ""), str(Path.cwd())])}
    run = _cli("export", "b0", "--resolution", "32", "--onnx", str(tmp_path / "m.onnx"), env=env)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert "pip install 'effnas[onnx]'" in lines[0]
    assert not (tmp_path / "m.onnx").exists()


def test_show_reads_a_run_dir(tmp_path, capsys):
    run_dir = _finished_run(tmp_path)
    (run_dir / "best.yaml").write_text(yaml.safe_dump({"genotype": "r1_k3_s11_e1_i32_o16_se0.25"}))
    assert main(["show", str(run_dir), "--json"]) == 0
    assert '"genotype": "r1_k3_s11_e1_i32_o16_se0.25"' in capsys.readouterr().out
