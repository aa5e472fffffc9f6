"""Spaces as declarations: the shipped YAML files, the positions API, travel by value, loading by name/path/mapping."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from search_spaces import (BlockGene, DeclarationError, Genotype, SearchSpace, get_space, list_spaces, load_space,
                           named_genotype, shipped_spaces)
from search_spaces.registry import DECLARATIONS

#: The MnasNet space as it was hard-coded before it became a declaration (Tan et al. 2019, section 4.1 over the
#: MobileNetV2 skeleton): (stride, filter options, layer options) per block.
MNASNET_TABLE = ((1, (8, 16, 24), (1, 2)), (2, (16, 24, 32), (1, 2, 3)), (2, (24, 32, 40), (2, 3, 4)),
                 (2, (48, 64, 80), (3, 4, 5)), (1, (80, 96, 112), (2, 3, 4)), (2, (128, 160, 192), (2, 3, 4)),
                 (1, (256, 320, 384), (1, 2)))
TINY_TABLE = ((1, (8, 16), (1,)), (2, (16, 24), (1, 2)), (2, (24, 32), (1, 2)))
CONV_OPS = (("conv", 1), ("mbconv", 1), ("mbconv", 3), ("mbconv", 6))


@pytest.mark.parametrize("name, table", [("mnasnet", MNASNET_TABLE), ("tiny", TINY_TABLE)])
def test_mnasnet_style_declarations_are_the_old_tables(name, table):
    space = get_space(name)
    assert len(space.positions) == len(table)
    for p, (stride, filters, layers) in zip(space.positions, table):
        assert p.stride == stride and p.fixed == {} and p.layer is None
        assert [d.name for d in p.decisions] == ["op", "kernel", "se", "skip", "filters", "layers"]
        op = p.decision("op")
        assert op.fields == ("op", "expand") and [(o["op"], o["expand"]) for o in op.options] == list(CONV_OPS)
        assert (p.values("kernel"), p.values("se"), p.values("skip")) == ((3, 5), (0.0, 0.25), (True, False))
        assert (p.values("filters"), p.values("layers")) == (filters, layers)
        assert p.values("expand", op="mbconv") == (1, 3, 6) and p.values("expand", op="conv") == (1,)
    assert space.frame.is_default and space.stem == 32


def test_mnasnet_counts_and_reference_points():
    space = get_space("mnasnet")
    assert space.cardinality == 192 ** 2 * 288 ** 5 == 73_040_694_872_113_152
    assert [p.size for p in space.positions] == [192, 288, 288, 288, 288, 288, 192]
    assert space.contains(named_genotype("b0"))
    a1 = named_genotype("mnasnet-a1")
    assert space.contains(a1.with_frame(activation="silu"))  # A1's blocks in the space's SiLU frame
    assert get_space("tiny").cardinality == 64 * 128 * 128 == 1_048_576


def test_combos_and_values_follow_the_ties():
    nbm = get_space("nas-bench-macro")
    assert [(p.index, p.stage, p.layer, p.stride) for p in nbm.positions] == [
        (0, 0, 0, 2), (1, 0, 1, 1), (2, 1, 0, 2), (3, 1, 1, 1), (4, 1, 2, 1), (5, 2, 0, 2), (6, 2, 1, 1), (7, 2, 2, 1)]
    p = nbm.positions[3]
    assert dict(p.fixed) == {"filters": 128, "layers": 1}
    (op,) = p.decisions
    assert op.fields == ("op", "kernel", "expand", "se", "skip") and op.varying() == ("op", "kernel", "expand")
    assert [dict(o) for o in op.options] == [  # {op: skip} completed by its pinned fields
        {"op": "skip", "kernel": 1, "expand": 1, "se": 0.0, "skip": True},
        {"op": "mbconv", "kernel": 3, "expand": 3, "se": 0.0, "skip": True},
        {"op": "mbconv", "kernel": 5, "expand": 6, "se": 0.0, "skip": True}]
    assert p.values("kernel", op="mbconv") == (3, 5) and p.values("kernel", expand=6) == (5,)
    assert p.values("filters") == (128,) and p.values("stride") == (1,)
    combos = p.combos()
    assert len(combos) == p.size == 3
    assert all(BlockGene(**c) for c in combos)
    combos[0]["kernel"] = 99  # a copy: callers cannot corrupt the position
    assert p.combos()[0]["kernel"] == 1
    with pytest.raises(ValueError, match="unknown layer field 'kernels'"):
        p.values("kernels")
    mnas = get_space("mnasnet").positions[2]
    assert len(mnas.combos()) == 288 and mnas.combos()[1] == {**mnas.combos()[0], "layers": 3}


def test_every_combo_is_a_point_and_decodes_in_order():
    for name in shipped_spaces():
        space = get_space(name)
        rng = np.random.default_rng(1)
        g = space.sample(rng)
        for i, p in enumerate(space.positions):
            for combo in p.combos()[:50]:
                blocks = list(g.blocks)
                blocks[i] = BlockGene(**combo)
                assert space.contains(Genotype(tuple(blocks), space.frame)), (name, i, combo)


@pytest.mark.parametrize("name", shipped_spaces())
def test_shipped_declarations_travel_by_value(name):
    space = get_space(name)
    data = space.to_declaration()
    again = SearchSpace(json.loads(json.dumps(data)))  # what a Ray worker rebuilds
    assert again == space and hash(again) == hash(space) and again is not space
    assert again.decision_sizes == space.decision_sizes and again.decision_names == space.decision_names
    rng = np.random.default_rng(3)
    for _ in range(20):
        g = space.sample(rng)
        assert again.encode(g) == space.encode(g) and again.decode(space.encode(g)) == g
        assert space.canonical(g) == again.canonical(g)
    data["name"] = "changed"
    assert space.to_declaration()["name"] == name  # a copy
    assert SearchSpace(data) != space


@pytest.mark.parametrize("name", shipped_spaces())
def test_shipped_files_are_headed_by_source_and_counts(name):
    text = (DECLARATIONS / f"{name}.yaml").read_text()
    header = text.split("\nname:")[0]
    space = get_space(name)
    assert space.name == name and space.source
    assert "Source" in header and "Counts" in header
    assert f"{space.cardinality:,}" in header, f"{name}: the header should state the cardinality"


def test_load_space_by_name_path_and_mapping(tmp_path):
    assert load_space("tiny") == get_space("tiny")
    assert load_space(get_space("tiny")) == get_space("tiny")
    text = (DECLARATIONS / "nas-bench-macro.yaml").read_text().replace("name: nas-bench-macro", "name: mine")
    (tmp_path / "mine.yaml").write_text(text)
    by_path = load_space("mine.yaml", base_dir=tmp_path)
    assert by_path.name == "mine" and by_path.decision_sizes == [3] * 8
    assert load_space(str(tmp_path / "mine.yaml")) == by_path == load_space(by_path.to_declaration())
    with pytest.raises(ValueError, match=r"unknown search space 'nope'; known: .*mnasnet.*tiny"):
        load_space("nope")
    with pytest.raises(ValueError, match=r"space file .*missing.yaml does not exist"):
        load_space("missing.yaml", base_dir=tmp_path)
    (tmp_path / "bad.yaml").write_text("name: x\nstages: [\n")
    with pytest.raises(ValueError, match=r"bad.yaml: line \d+, column \d+: not valid YAML"):
        load_space(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("name: x\nstages:\n  - {stride: 1, filters: 16, kernal: 3}\n")
    with pytest.raises(DeclarationError) as info:
        load_space(tmp_path / "typo.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'typo.yaml'}: stages[0].kernal: unknown key 'kernal'")
    assert {"mnasnet", "tiny", "nas-bench-macro"} <= set(list_spaces())


def test_yaml_anchors_and_merge_keys(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "name: anchored\n"
        "stages:\n"
        "  - {stride: 1, decisions: &d {kernel: [3, 5], filters: [16, 24]}}\n"
        "  - {stride: 2, decisions: {<<: *d, filters: [32, 40], se: [0.0, 0.25]}}\n")
    space = load_space(tmp_path / "a.yaml")
    assert space.decision_names == ["b1_kernel", "b1_filters", "b2_kernel", "b2_filters", "b2_se"]
    assert space.positions[1].values("filters") == (32, 40)


def test_defaults_pins_and_per_layer_stages():
    space = SearchSpace({
        "name": "layerwise", "frame": {"stem": 16, "activation": "relu6"},
        "defaults": {"kernel": 5, "se": 0.25},
        "stages": [{"stride": 2, "filters": 24, "layers": 3, "per": "layer",
                    "decisions": {"op": [{"op": "skip"}, {"op": "mbconv", "expand": 6}, {"op": "nodw", "expand": 4}]}},
                   {"stride": 1, "filters": 32, "op": "conv"}]})
    assert [p.stride for p in space.positions] == [2, 1, 1, 1] and space.decision_sizes == [3, 3, 3]
    op = space.positions[0].decisions[0]
    # the pins override the defaults: skip has kernel 1 and no SE, nodw no SE; mbconv keeps the defaults
    assert [(o["op"], o["kernel"], o["se"]) for o in op.options] == [("skip", 1, 0.0), ("mbconv", 5, 0.25),
                                                                      ("nodw", 5, 0.0)]
    assert dict(space.positions[3].fixed) == {"op": "conv", "kernel": 5, "expand": 1, "se": 0.25, "skip": True,
                                              "filters": 32, "layers": 1}
    g = space.decode([0, 1, 2])
    assert g.frame.activation == "relu6" and g.frame.stem == 16 and g.to_string().endswith("act_relu6")
    assert space.cardinality == 27 and space.decision_names == ["b1_op", "b2_op", "b3_op"]


def test_validate_checks_the_frame_the_space_owns():
    space = get_space("mnasnet")
    b0 = named_genotype("b0")
    with pytest.raises(ValueError, match=r"activation relu is not in space 'mnasnet'; its activation is fixed at "
                                         r"silu \(genotype.with_frame\(activation='silu'\)"):
        space.validate(b0.with_frame(activation="relu"))
    for change in ({"stem_stride": 1}, {"stem": 16}, {"se_activation": "relu"}):
        assert not space.contains(b0.with_frame(**change)), change
    for change in ({"head": 1024}, {"head_scaling": "fixed"}, {"stem_scaling": "fixed"}):
        assert space.contains(b0.with_frame(**change)), change  # the target model's
    nbm = get_space("nas-bench-macro")
    g = nbm.decode([1] * 8)
    assert g.frame.stem_stride == 1 and g.frame.activation == "relu"
    with pytest.raises(ValueError, match=r"genotype block 2: op/kernel/expand=mbconv/5/3 is not in space "
                                         r"'nas-bench-macro'; allowed: skip/1/1, mbconv/3/3, mbconv/5/6"):
        nbm.validate(Genotype(tuple(b if i != 1 else BlockGene(op="mbconv", kernel=5, expand=3, filters=64)
                                    for i, b in enumerate(g.blocks)), g.frame))
    with pytest.raises(ValueError, match=r"genotype block 1: se=0.25 is not in space 'nas-bench-macro'; allowed: 0.0"):
        nbm.validate(Genotype((BlockGene(op="mbconv", kernel=3, stride=2, expand=3, se=0.25, filters=64),)
                              + g.blocks[1:], g.frame))
    with pytest.raises(ValueError, match=r"genotype block 1: filters=48 is not in space 'nas-bench-macro'; "
                                         r"allowed: 64"):
        nbm.validate(Genotype((BlockGene(op="mbconv", kernel=3, stride=2, expand=3, filters=48),)
                              + g.blocks[1:], g.frame))


@pytest.mark.parametrize("name", shipped_spaces())
def test_sample_mutate_encode_on_every_shipped_space(name):
    space = get_space(name)
    rng = np.random.default_rng(5)
    seen = [set() for _ in space.decision_sizes]
    for _ in range(300):
        g = space.sample(rng)
        codes = space.encode(g)
        assert space.decode(codes) == g
        for i, c in enumerate(codes):
            seen[i].add(c)
        child = space.mutate(g, rng)
        assert sum(a != b for a, b in zip(codes, space.encode(child))) == 1
    assert [len(s) for s in seen] == space.decision_sizes
    assert math.prod(space.decision_sizes) == space.cardinality
    assert all(re.fullmatch(r"b\d+_[a-z][a-z0-9_]*", n) for n in space.decision_names)


@pytest.mark.parametrize("name", shipped_spaces())
def test_spaces_pickle_and_copy_by_value(name):
    import copy
    import pickle

    space = get_space(name)
    for again in (pickle.loads(pickle.dumps(space)), copy.deepcopy(space)):
        assert again == space and again.decision_sizes == space.decision_sizes
        assert again.positions == space.positions
    position = space.positions[-1]
    assert pickle.loads(pickle.dumps(position)) == position
