"""Canonical networks: ``network_key`` against NAS-Bench-Macro's real table, and each aliasing rule by hand."""

from __future__ import annotations

import collections
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from search_spaces import BlockGene, Genotype, get_space, named_genotype, network_key

TABLE = Path(__file__).resolve().parents[1] / "nas" / "builtin" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"


@pytest.fixture(scope="module")
def table() -> dict:
    return json.loads(TABLE.read_text())


@pytest.fixture(scope="module")
def nbm():
    return get_space("nas-bench-macro")


def test_every_table_key_is_a_genotype_and_back(table, nbm):
    """All 6,561 keys of the benchmark: key -> decisions -> genotype -> encode -> the same key."""
    assert len(table) == 6561 == nbm.cardinality
    for key in table:
        g = nbm.decode([int(c) for c in key])
        assert "".join(map(str, nbm.encode(g))) == key
    assert nbm.decision_names == [f"b{i}_op" for i in range(1, 9)]


def test_table_aliases_are_exactly_the_equal_network_keys(table, nbm):
    """3,969 distinct networks; the keys of one network carry byte-identical records (the benchmark trained
    them once), and no two networks share their three training runs."""
    groups = collections.defaultdict(list)
    for key in table:
        groups[nbm.canonical(nbm.decode([int(c) for c in key]))].append(key)
    assert len(groups) == 3969
    for keys in groups.values():
        assert len({json.dumps(table[k], sort_keys=True) for k in keys}) == 1, keys
    runs = [tuple(table[keys[0]]["test_acc"]) for keys in groups.values()]
    assert len(set(runs)) == len(runs)
    # the README's example: an identity after a stage's first layer moves to the end of the stage
    for a, b in (("12201000", "12210000"), ("00000102", "00000120"), ("11101011", "11110011")):
        assert network_key(nbm.decode([int(c) for c in a])) == network_key(nbm.decode([int(c) for c in b]))
    # a stage's first identity is a strided 1x1 conv, not moved
    assert network_key(nbm.decode([0, 1] + [1] * 6)) != network_key(nbm.decode([1, 0] + [1] * 6))


def _g(*blocks: BlockGene, **frame) -> Genotype:
    return Genotype(tuple(blocks)).with_frame(**frame)


def test_residual_flag_counts_only_where_a_residual_exists():
    a = BlockGene(op="mbconv", kernel=3, stride=2, expand=6, filters=24, skip=True)
    assert network_key(_g(a)) == network_key(_g(dataclasses.replace(a, skip=False)))  # stride 2
    wide = dataclasses.replace(a, stride=1)  # 32 -> 24: in != out
    assert network_key(_g(wide)) == network_key(_g(dataclasses.replace(wide, skip=False)))
    same = dataclasses.replace(a, stride=1, filters=32)  # 32 -> 32, stride 1: the residual is real
    assert network_key(_g(same)) != network_key(_g(dataclasses.replace(same, skip=False)))
    # the later layers of a block always have stride 1 and in == out
    two = dataclasses.replace(a, layers=2)
    assert network_key(_g(two)) != network_key(_g(dataclasses.replace(two, skip=False)))


def test_identity_layers_build_nothing():
    first = BlockGene(op="mbconv", kernel=3, stride=1, expand=3, filters=32)
    ident = BlockGene(op="skip", kernel=1, stride=1, filters=32)
    assert network_key(_g(first, ident)) == network_key(_g(first))
    assert network_key(_g(ident, first)) == network_key(_g(first))
    assert network_key(_g(first, dataclasses.replace(ident, layers=3))) == network_key(_g(first))
    # where channels or stride change, skip is a 1x1 conv: a layer of its own
    for proj in (dataclasses.replace(ident, filters=48), dataclasses.replace(ident, stride=2)):
        assert network_key(_g(first, proj)) != network_key(_g(first, dataclasses.replace(proj, op="mbconv", kernel=3)))
        assert len(network_key(_g(first, proj))[1]) == 2


def test_nodw_kernel_and_its_fused_twin():
    nodw = BlockGene(op="nodw", kernel=5, stride=1, expand=4, filters=24)
    assert network_key(_g(nodw)) == network_key(_g(dataclasses.replace(nodw, kernel=3)))  # always a 3x3 conv
    fused = BlockGene(op="fused", kernel=3, stride=1, expand=4, filters=24)
    assert network_key(_g(nodw)) == network_key(_g(fused))
    # but not with a stride (TF's c1 strides its projection, fused its expansion), SE, or another kernel
    assert network_key(_g(dataclasses.replace(nodw, stride=2))) != network_key(_g(dataclasses.replace(fused, stride=2)))
    assert network_key(_g(nodw)) != network_key(_g(dataclasses.replace(fused, se=0.25)))
    assert network_key(_g(nodw)) != network_key(_g(dataclasses.replace(fused, kernel=5)))


def test_se_by_its_squeeze_width():
    a = BlockGene(op="mbconv", kernel=3, stride=1, expand=6, filters=16, se=0.25)
    # in 32: int(32 * 0.25) = 8 == int(32 * 0.26)
    assert network_key(_g(a)) == network_key(_g(dataclasses.replace(a, se=0.26)))
    assert network_key(_g(a)) != network_key(_g(dataclasses.replace(a, se=0.3)))


def test_frame_is_part_of_the_key():
    g = named_genotype("b0")
    assert network_key(g) == network_key(Genotype.from_string(g.to_string()))
    for change in ({"activation": "relu"}, {"stem": 16}, {"head": 1024}, {"stem_stride": 1}, {"se_activation": "relu"}):
        assert network_key(g.with_frame(**change)) != network_key(g), change


def test_distinct_points_of_the_mnasnet_space_are_distinct_networks_except_the_rules():
    """In the MnasNet space the only aliases are noskip on strided/widening blocks (the first layer of a block
    whose stride is 2 or whose filters change); check that on random pairs that differ in one decision."""
    space = get_space("mnasnet")
    rng = np.random.default_rng(0)
    for _ in range(300):
        g = space.sample(rng)
        child = space.mutate(g, rng)
        diff = [(i, a, b) for i, (a, b) in enumerate(zip(g.blocks, child.blocks)) if a != b]
        ((i, a, b),) = diff
        same = network_key(g) == network_key(child)
        in_filters = g.in_filters(i)
        residual_possible = a.layers > 1 or (a.stride == 1 and in_filters == a.filters)
        only_skip = dataclasses.replace(a, skip=b.skip) == b
        assert same == (only_skip and not residual_possible), (g.to_string(), child.to_string())
