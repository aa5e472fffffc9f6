"""An experiment's ``space:`` as a shipped name, a user's YAML file or an inline mapping (``nas.experiment.space``).

Unit tests (no Ray): where a file is looked for, strict one-line errors, the declaration in the resolved config
(``--resume`` uses the run dir's copy), the supernet checkpoint's recorded declaration.  The Ray tests run
``nas search`` on a user's YAML space (written here, not shipped) with the proxy and the supernet evaluator
through a 2-CPU local Ray, 2 workers each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nas.config import ConfigError
from nas.experiment.load import load_run, write_config
from nas.experiment.search import Experiment, load_experiment
from nas.experiment.space import resolve_space, space_record
from search_helpers import small
from search_spaces import get_space

#: A user's space: two layer-wise stages with skip, fused and ReLU6 (not a shipped declaration).
USER_SPACE = """\
name: user-space
source: "written by tests/test_space_files.py"
frame: {stem: 8, stem_stride: 1, head: 64, activation: relu6}
defaults: {op: mbconv, kernel: 3, expand: 1, se: 0.0, skip: true}
stages:
  - stride: 1
    filters: 8
    decisions:
      op: [{op: fused, expand: 1}, {op: fused, expand: 3}]
      kernel: [3, 5]
  - stride: 2
    filters: 16
    layers: 2
    per: layer
    decisions:
      op: [{op: skip}, {op: mbconv, expand: 3, kernel: 3}, {op: mbconv, expand: 3, kernel: 5, se: 0.25}]
"""


def _write(folder: Path, text: str = USER_SPACE, name: str = "my_space.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _experiment_file(folder: Path, tmp_path: Path, space, **sections) -> Path:
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(small(tmp_path, space=space, **sections)))
    return path


def test_a_yaml_file_is_found_next_to_the_experiment_and_kept_by_value(tmp_path, monkeypatch):
    exp_dir = tmp_path / "exps"
    _write(exp_dir / "spaces")
    monkeypatch.chdir(tmp_path)  # not the experiment's folder: the path is relative to the experiment file
    exp = load_experiment(_experiment_file(exp_dir, tmp_path, "spaces/my_space.yaml"))
    assert isinstance(exp.space, dict) and exp.space["name"] == "user-space"
    assert exp.search_space.name == "user-space" and exp.search_space.frame.activation == "relu6"
    assert exp.search_space == resolve_space(exp.space)  # a worker rebuilds it from the value alone
    from search_spaces import load_space

    # the same encode order as the file (a declaration's key order is its decisions' order)
    assert exp.search_space.decision_names == load_space(exp_dir / "spaces/my_space.yaml").decision_names
    assert exp.search_space.decision_names[:2] == ["b1_op", "b1_kernel"]


def test_an_inline_mapping_and_a_shipped_name(tmp_path):
    inline = yaml.safe_load(USER_SPACE)
    exp = load_experiment(data=small(tmp_path, space=inline))
    assert exp.search_space.name == "user-space" and exp.space == exp.search_space.to_declaration()
    named = load_experiment(data=small(tmp_path, space="tiny"))
    assert named.space == "tiny" and named.search_space == get_space("tiny")


@pytest.mark.parametrize("space, message", [
    ("nope", r"^space: unknown search space 'nope'; known: .*mnasnet"),
    ("missing.yaml", r"^space: space file .*missing.yaml does not exist"),
    (["tiny"], r"^space: expected a shipped space name .* got \['tiny'\]"),
])
def test_a_wrong_space_is_one_line(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_experiment(_experiment_file(tmp_path, tmp_path, space))
    assert "\n" not in str(err.value)


def test_a_mistake_in_the_file_or_mapping_names_its_yaml_path(tmp_path):
    bad = USER_SPACE.replace("kernel: [3, 5]", "kernal: [3, 5]")
    _write(tmp_path, bad)
    with pytest.raises(ConfigError, match=r"^space: .*my_space.yaml: stages\[0\]\.decisions\.kernal: ") as err:
        load_experiment(_experiment_file(tmp_path, tmp_path, "my_space.yaml"))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^space\.stages\[0\]\.decisions\.kernal: "):
        load_experiment(data=small(tmp_path, space=yaml.safe_load(bad)))


def test_the_cli_says_one_line_and_exits_2(tmp_path, capsys):
    from nas.cli import main

    _write(tmp_path, USER_SPACE.replace("relu6", "gelu"))
    code = main(["search", str(_experiment_file(tmp_path, tmp_path, "my_space.yaml"))])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "frame.activation" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_resume_uses_the_run_dirs_copy_when_the_file_changed_or_vanished(tmp_path):
    space_file = _write(tmp_path)
    exp = load_experiment(_experiment_file(tmp_path, tmp_path, "my_space.yaml"))
    write_config(exp)
    space_file.write_text(USER_SPACE.replace("user-space", "edited"))
    again = load_run(Experiment, exp.run_dir, resume=True)
    assert again.search_space == exp.search_space
    space_file.unlink()
    assert load_run(Experiment, exp.run_dir, resume=True).search_space.name == "user-space"


def test_a_supernet_checkpoint_records_the_declaration_and_a_mismatch_is_one_line(tmp_path):
    from nas.evaluators.supernet import _check_fits

    assert space_record("tiny") == get_space("tiny").to_declaration()
    exp = load_experiment(data=small(tmp_path, space=yaml.safe_load(USER_SPACE)))
    meta = {"space": space_record("tiny"), "data": {}}
    with pytest.raises(ConfigError, match=r"^evaluator.checkpoint: the supernet is of space 'tiny', the experiment "
                                          r"searches 'user-space'; "):
        _check_fits(meta, exp)
    edited = space_record(exp.space)
    edited["frame"]["activation"] = "relu"
    with pytest.raises(ConfigError, match=r"a declaration of the same name that differs"):
        _check_fits({"space": edited, "data": {}}, exp)


def test_nas_show_space_finds_the_exact_largest_and_smallest_network(tmp_path, capsys):
    import itertools
    import json

    from efficientnet import count_spec, model_spec
    from nas.cli import main
    from search_spaces import load_space

    path = _write(tmp_path)
    space = load_space(path)
    macs = {tuple(c): count_spec(model_spec(space.decode(c)))[1]
            for c in itertools.product(*(range(n) for n in space.decision_sizes))}
    assert len(macs) == space.cardinality == 36
    assert main(["show", "--space", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "user-space" and info["cardinality"] == 36 and info["frame"]["activation"] == "relu6"
    assert [d["name"] for d in info["decisions"]] == space.decision_names  # encode order
    assert {d["name"]: d["options"] for d in info["decisions"]}["b2_op"][0].startswith("{op: skip")
    assert info["largest"]["macs"] == max(macs.values()) and info["smallest"]["macs"] == min(macs.values())
    assert info["largest"]["genotypes_counted"] < 36  # a search, not the enumeration
    assert main(["show", "--space", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "cardinality: 1,048,576" in out and "largest (MACs at width 1 depth 1 224px)" in out
    assert main(["show"]) == 2 and "NAME_OR_GENOTYPE" in capsys.readouterr().err
    assert main(["show", "b0", "--space", "tiny"]) == 2 and "not both" in capsys.readouterr().err


def test_nas_profile_builds_a_table_of_a_yaml_space_that_validates_without_the_file(tmp_path, capsys):
    from nas.cli import main
    from nas.cost.latency import LatencyTable
    from nas.cost.latency.validate import validation_genotypes
    from search_spaces import load_space

    path, out = _write(tmp_path), tmp_path / "lut.json"
    space = load_space(path)
    assert main(["profile", "--space", str(path), "--resolution", "16", "--num-classes", "10", "--samples", "2",
                 "--calibrate", "2", "--warmup", "1", "--repeats", "2", "--rounds", "1", "--no-pin", "--out",
                 str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["space"] == "user-space"
    path.unlink()
    table = LatencyTable.load(out)
    assert table.target["space"] == space.to_declaration()  # the table carries its space
    genotypes = validation_genotypes(table, 3, seed=1)
    assert len(genotypes) == 3 and all(space.contains(g) for g in genotypes)
    assert main(["profile", "--space", str(path), "--out", str(out)]) == 2
    assert "--space: space file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------
# A user's YAML space through local Ray (2 workers), both evaluators
# ---------------------------------------------------------------------------------------------------------
DATA = {"kind": "builtin", "holdout": 128, "train_limit": 256}


def _in_space(run_dir: Path, space) -> list[dict]:
    from nas.search import results
    from search_spaces import Genotype

    rows = results.ok_rows(results.read_trials(run_dir))
    for row in rows:
        space.validate(Genotype.from_string(row["genotype"]))
    return rows


@pytest.mark.ray
@pytest.mark.training
def test_a_users_yaml_space_searches_with_both_evaluators_through_ray(tmp_path, local_ray):
    import torch

    from nas.search.stages import run_search
    from nas.supernet import load_supernet_experiment, read_checkpoint, train_supernet

    _write(tmp_path)
    exp = load_experiment(_experiment_file(tmp_path, tmp_path, "my_space.yaml", data=dict(DATA),
                                           objective={"cost": "macs", "target": 2e5, "w": -0.07},
                                           budget={"samples": 4}))
    run_search(exp)
    assert len(_in_space(exp.run_dir, exp.search_space)) == 4

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    sn_file = tmp_path / "sn.yaml"
    sn_file.write_text(yaml.safe_dump({
        "space": "my_space.yaml", "data": DATA,
        "proxy": {"resolution": 16, "stem_stride": 1, "width": 0.25, "depth": 1.0, "device": "cpu"},
        "supernet": {"epochs": 1, "batch_size": 64, "calib_batches": 1, "calib_batch_size": 64},
        "output": {"dir": str(tmp_path / "sn"), "name": "sn"}}))
    sn = load_supernet_experiment(sn_file)
    train_supernet(sn)
    torch.set_num_threads(before)
    assert read_checkpoint(sn.checkpoint_path)["meta"]["space"] == exp.search_space.to_declaration()
    (tmp_path / "my_space.yaml").unlink()  # the checkpoint and the search carry the declaration, not the file
    cfg = yaml.safe_load((exp.run_dir / Experiment.CONFIG_FILE).read_text())
    cfg["output"]["name"] = "sn-search"
    cfg["evaluator"] = {"kind": "supernet", "checkpoint": str(sn.checkpoint_path), "workers": 2, "batch": 2}
    cfg["budget"]["samples"] = 8
    found = load_experiment(data=cfg)
    run_search(found)
    rows = _in_space(found.run_dir, found.search_space)
    assert len(rows) == 8 and all(r["epochs"] == 0 for r in rows)
