"""The run dir's files without Ray: torn rows, the recorder across a resume, resume rules, pip-user files."""

from __future__ import annotations

import json
import logging
import pickle
import time
from pathlib import Path

import pytest

from nas.config import ConfigError
from nas.evaluators.outcome import TrialResult
from nas.experiment.load import relocated, resolved_yaml
from nas.experiment.search import load_experiment
from nas.search import results
from nas.search.resume import MAY_CHANGE, changes
from nas.search.session import ListProposer, Session
from search_helpers import small

REPO = Path(__file__).resolve().parent.parent


def _row(i: int, **extra) -> dict:
    return {"trial_id": f"t{i}", "index": i, "genotype": "r1_k3_s11_e1_i32_o16_se0.25", "status": "ok",
            "reward": 0.1 * i, "accuracy": 0.1 * i, "macs": 1, "params": 1, **extra}


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_row_starts_a_new_line(tmp_path, caplog):
    for i in range(2):
        results.append_trial(tmp_path, _row(i))
    with open(tmp_path / results.TRIALS, "a", encoding="utf-8") as f:
        f.write('{"trial_id": "t2", "ind')  # the crash came mid-write
    with caplog.at_level(logging.WARNING):
        assert [r["trial_id"] for r in results.read_trials(tmp_path)] == ["t0", "t1"]
    assert "line 3 is not a whole trial row" in caplog.text
    results.append_trial(tmp_path, _row(3))
    assert [r["trial_id"] for r in results.read_trials(tmp_path)] == ["t0", "t1", "t3"]  # nothing lost
    lines = (tmp_path / results.TRIALS).read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[3])["trial_id"] == "t3"


G = "r1_k3_s11_e1_i32_o16_se0.25"


def _fixed(run_dir, n=10, resume=False, **kw) -> Session:
    return Session(run_dir, ListProposer([(G, {"seed": i}) for i in range(n)]), n, resume=resume, **kw)


def test_search_time_after_a_resume_does_not_count_the_downtime(tmp_path):
    first = _fixed(tmp_path, 3)
    (c,) = first.ask()
    time.sleep(0.2)
    first.record(c, TrialResult(G, "ok", reward=0.5, accuracy=0.5, macs=1))
    first.close()
    time.sleep(1.2)                 # the search is down
    second = _fixed(tmp_path, 3, resume=True)
    (c,) = second.ask()
    second.record(c, TrialResult(G, "ok", reward=0.6, accuracy=0.6, macs=1))
    rows = results.read_trials(tmp_path)
    assert [r["index"] for r in rows] == [0, 1]
    assert 0.2 <= rows[0]["search_s"] <= rows[1]["search_s"] < rows[0]["search_s"] + 1.0  # the 1.2 s down: not counted


def test_the_failure_net_needs_the_same_reason_for_the_first_trials_of_a_session(tmp_path):
    def fail(session, reasons):
        for reason in reasons:
            (c,) = session.ask()
            session.record(c, TrialResult(G, "failed", reason=reason))

    same = _fixed(tmp_path / "same")
    fail(same, [f"OSError: shard {i * 7} unreadable" for i in range(2)])
    assert same.stop_reason is None
    fail(same, ["OSError: shard 99 unreadable"])  # numbers differ, the cause does not
    assert same.stop_reason.startswith("search stopped: the first 3 trials all failed with: OSError: shard 0")
    assert same.ask() == []  # a stopping session hands out nothing more
    mixed = _fixed(tmp_path / "mixed")
    fail(mixed, ["OSError: disk", "ValueError: nan loss", "OSError: disk", "OSError: disk"])
    assert mixed.stop_reason is None  # two causes: a search that goes on
    off = _fixed(tmp_path / "off", stop_after_failures=0)
    fail(off, ["OSError: disk"] * 4)
    assert off.stop_reason is None


def _stored(tmp_path: Path, **sections):
    exp = load_experiment(data=small(tmp_path, **sections))
    exp.run_dir.mkdir(parents=True)
    (exp.run_dir / results.CONFIG).write_text(resolved_yaml(exp))
    return exp


def test_resume_may_grow_the_budget_and_time_limit_and_nothing_that_changes_results(tmp_path):
    exp = _stored(tmp_path, budget={"samples": 4, "time_limit_s": 60})
    data = small(tmp_path, budget={"samples": 9, "time_limit_s": 120}, resources={"max_concurrent": 2})
    assert changes(load_experiment(data=data)) == {"budget.samples": (4, 9), "budget.time_limit_s": (60, 120)}
    for key, value in (("proxy", {"epochs": 4}), ("space", "mnasnet"), ("data", {"holdout": 64}),
                       ("objective", {"w": -0.15}), ("controller", {"name": "random"})):
        with pytest.raises(ConfigError, match=r"may not change on resume \(only budget.samples, "):
            changes(load_experiment(data=small(tmp_path, **{key: value})))
    with pytest.raises(ConfigError, match=r"budget.samples may only grow \(4 -> 3\)"):
        changes(load_experiment(data=small(tmp_path, budget={"samples": 3})))
    assert "budget.samples" in MAY_CHANGE and "proxy.epochs" not in MAY_CHANGE
    moved = relocated(exp, tmp_path / "else" / "where")
    assert moved.run_dir == (tmp_path / "else" / "where").resolve() and moved.output.name == "where"


def test_nas_init_copies_the_shipped_experiments_and_keeps_existing_files(tmp_path, capsys):
    from nas.cli import main

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quickstart.yaml").write_text("mine\n")
    assert main(["init", str(tmp_path)]) == 0
    shipped = sorted(p.name for p in (REPO / "experiments").glob("*.yaml"))
    assert sorted(p.name for p in (tmp_path / "experiments").glob("*.yaml")) == shipped
    assert (tmp_path / "experiments" / "quickstart.yaml").read_text() == "mine\n"  # kept
    assert (tmp_path / "experiments" / "proxy_cpu.yaml").read_text() == (REPO / "experiments" /
                                                                        "proxy_cpu.yaml").read_text()
    assert f"copied {len(shipped) - 1} experiment(s), kept 1 existing" in capsys.readouterr().out
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"experiments/*.yaml"' in pyproject and (REPO / "nas" / "experiments").resolve() == REPO / "experiments"


def test_the_license_file_is_the_apache_2_text_the_package_declares():
    text = (REPO / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "END OF TERMS AND CONDITIONS" in text
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text()
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"onnx>=1.15", "onnxruntime>=1.17"} <= set(extras["onnx"]) <= set(extras["test"])


def test_threads_are_the_trial_cpus_unless_set():
    import torch

    from nas.experiment.proxy import ProxyConfig
    from nas.proxy.runtime import set_trial_threads, trial_threads

    assert trial_threads(ProxyConfig()) == 1 and trial_threads(ProxyConfig(), 3.0) == 3
    assert trial_threads(ProxyConfig(), 0.5) == 1 and trial_threads(ProxyConfig(threads=2), 4.0) == 2
    before = torch.get_num_threads()
    try:
        assert set_trial_threads(ProxyConfig(threads=2)) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="proxy.threads must be an integer >= 1 or null"):
        ProxyConfig(threads=0)
