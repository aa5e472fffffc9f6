"""Benchmark tables: the shipped NAS-Bench-Macro (against its own file) and users' JSON/CSV tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas.data.tables import BenchmarkTable, load_table
from search_spaces import get_space, named_genotype

RAW = __import__("pathlib").Path(__file__).resolve().parents[1] / "nas/builtin/nas-bench-macro/nas-bench-macro_cifar10.json"


@pytest.fixture(scope="module")
def macro() -> BenchmarkTable:
    return load_table("nas-bench-macro")


def test_nas_bench_macro_every_key_finds_its_own_numbers(macro):
    raw = json.loads(RAW.read_text())
    space = get_space("nas-bench-macro")
    assert len(raw) == 6561 and len(macro) == 3969
    for key, value in raw.items():
        record = macro.lookup(space.decode([int(c) for c in key]))
        assert record.accuracies == tuple(a / 100 for a in value["test_acc"])
        assert (record.params, record.macs) == (value["params"], value["flops"])
    # the file's own aliases: "201" builds as "210" inside a stage
    alias = macro.lookup(space.decode([int(c) for c in "20" "201" "000"]))
    assert alias is macro.lookup(space.decode([int(c) for c in "20" "210" "000"]))


def test_ranks_and_sampling(macro):
    means = macro.means()
    best = float(means.max())
    assert macro.rank_of(best) == (1, 100.0)
    assert macro.rank_of(float(means.min()))[0] == len(macro)
    assert abs(best - 0.9312666) < 1e-6  # the table's best mean accuracy (key 22212220)
    record = macro.lookup(get_space("nas-bench-macro").decode([2, 2, 2, 1, 2, 2, 2, 0]))
    assert record.mean == pytest.approx(best)
    draws = {record.sample(np.random.default_rng(s)) for s in range(30)}
    assert draws == set(record.accuracies)


def test_user_tables_json_and_csv_agree(tmp_path):
    b0, a1 = named_genotype("b0"), named_genotype("mnasnet-a1")
    (tmp_path / "t.json").write_text(json.dumps({"format": "effnas-table/1", "networks": {
        b0.to_string(): {"accuracy": [0.77, 0.771], "params": 5288548}, "mnasnet-a1": {"accuracy": 0.752}}}))
    (tmp_path / "t.csv").write_text('genotype,accuracy_0,accuracy_1,params\n'
                                    f'"{b0.to_string()}",0.77,0.771,5288548\n')
    js, cs = load_table(tmp_path / "t.json"), load_table(tmp_path / "t.csv")
    assert js.lookup(b0) == cs.lookup(b0)
    assert js.lookup(b0).accuracies == (0.77, 0.771) and js.lookup(b0).params == 5288548
    assert js.lookup(a1).accuracies == (0.752,)
    assert cs.lookup(a1) is None


@pytest.mark.parametrize("content, suffix, message", [
    ('{"format": "x", "networks": {}}', ".json", 'a JSON table is an object with "format"'),
    ('{"format": "effnas-table/1", "networks": {"b0": {"accuracy": [91.2]}}}', ".json", "divide percentages by 100"),
    ('{"format": "effnas-table/1", "networks": {"b0": {"acc": [0.9]}}}', ".json", "unknown field(s) ['acc']"),
    ('{"format": "effnas-table/1", "networks": {"r9_bad": {"accuracy": [0.9]}}}', ".json", "genotype:"),
    ('{"format": "effnas-table/1", "networks": {"b0": {"accuracy": [0.9], "params": -1}}}', ".json",
     "params must be a non-negative integer"),
    ("genotype,acc\nb0,0.9\n", ".csv", "a CSV table has the columns genotype, accuracy_0"),
    ("genotype,accuracy_0\nb0,zero\n", ".csv", "line 2 accuracy_0: 'zero' is not a number"),
    ('{"format": "effnas-table/1", "networks": {}}', ".json", "has no networks"),
    ("x", ".txt", "the format is told by the suffix"),
])
def test_user_table_mistakes_name_the_row_and_field(tmp_path, content, suffix, message):
    path = tmp_path / f"t{suffix}"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        load_table(path)
    assert message in str(info.value)


def test_two_rows_of_one_network_must_agree(tmp_path):
    space = get_space("nas-bench-macro")
    a, b = (space.decode([int(c) for c in k]).to_string() for k in ("20201000", "20210000"))
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "effnas-table/1", "networks": {a: {"accuracy": 0.9}, b: {"accuracy": 0.8}}}))
    with pytest.raises(ValueError, match="already in the table"):
        load_table(path)
    path.write_text(json.dumps({"format": "effnas-table/1", "networks": {a: {"accuracy": 0.9}, b: {"accuracy": 0.9}}}))
    assert len(load_table(path)) == 1


def test_missing_and_folder_sources(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_table(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="is a folder"):
        load_table(tmp_path)
