"""The layer-wise (fbnet) and EdgeTPU-style (edgetpu) declarations: their tables, counts and reference points."""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from search_spaces import BlockGene, Genotype, get_space, named_genotype, network_key
from search_spaces.registry import DECLARATIONS

#: Distinct networks (``network_key``), counted by :func:`distinct_networks` below.
DISTINCT = {"fbnet": 49 * 1813 ** 5, "nas-bench-macro": 3969, "edgetpu": 53_747_712_000}


def _stages(space) -> list[list]:
    stages = defaultdict(list)
    for p in space.positions:
        stages[p.stage].append(p)
    return [stages[s] for s in sorted(stages)]


def distinct_networks(space) -> int:
    """Distinct ``network_key`` s of a space, stage by stage: the keys of a stage's layers for every input width,
    chained over the output widths.  Exact where stage boundaries cannot blur -- each stage after the first starts
    with a strided layer or has other widths than the stage before (so no layer can move between stages)."""
    stages = _stages(space)
    for a, b in zip(stages, stages[1:]):
        filters = lambda group: {f for p in group for f in p.values("filters")}  # noqa: E731
        if b[0].stride == 1 and filters(a) & filters(b):
            raise ValueError(f"stage {b[0].stage} may continue stage {a[0].stage}: the count would not be exact")
    counts = {space.frame.stem: 1}
    for group in stages:
        keys: dict[tuple[int, int], set] = defaultdict(set)
        for cin in counts:
            frame = space.frame.__class__(**{**space.frame.__dict__, "stem": cin})
            for combo in itertools.product(*(p.combos() for p in group)):
                g = Genotype(tuple(BlockGene(**c) for c in combo), frame)
                keys[cin, combo[-1]["filters"]].add(network_key(g)[1])
        nxt: dict[int, int] = defaultdict(int)
        for (cin, cout), found in keys.items():
            nxt[cout] += counts[cin] * len(found)
        counts = dict(nxt)
    return sum(counts.values())


def test_fbnet_is_the_fbnet_table():
    space = get_space("fbnet")
    assert len(space.positions) == 22 and space.decision_sizes == [7] * 22
    assert [len(g) for g in _stages(space)] == [1, 4, 4, 4, 4, 4, 1]
    assert [g[0].values("filters")[0] for g in _stages(space)] == [16, 24, 32, 64, 112, 184, 352]
    assert [p.stride for p in space.positions if p.layer == 0] == [1, 2, 2, 2, 1, 2, 1]
    assert all(p.stride == 1 for p in space.positions if p.layer)
    op = space.positions[5].decisions[0]
    assert [(o["op"], o["kernel"], o["expand"]) for o in op.options] == [
        ("irpw", 3, 1), ("mbconv", 3, 3), ("mbconv", 3, 6), ("irpw", 5, 1), ("mbconv", 5, 3), ("mbconv", 5, 6),
        ("skip", 1, 1)]
    f = space.frame
    assert (f.stem, f.stem_stride, f.head, f.head_scaling, f.activation) == (16, 2, 1984, "fixed", "relu")
    assert space.cardinality == 7 ** 22 == 3_909_821_048_582_988_049


def test_fbnet_c_is_a_network_of_the_fbnet_space():
    """timm's fbnetc_100 (the zoo's fbnet-c): its 21 layers and one skip at the end of its 3-layer stage."""
    space = get_space("fbnet")
    zoo = named_genotype("fbnet-c").with_frame(activation="relu")
    layers = [BlockGene(**{**b.__dict__, "layers": 1, "stride": b.stride if i == 0 else 1})
              for b in zoo.blocks for i in range(b.layers)]
    assert len(layers) == 21
    codes, it = [], iter(layers)
    pending = next(it)
    for p in space.positions:
        (op,) = p.decisions
        if pending is not None and pending.filters == p.values("filters")[0] and (p.layer == 0 or pending.stride == 1):
            codes.append(op.index_of(pending))
            pending = next(it, None)
        else:
            codes.append(len(op) - 1)  # skip
    assert None not in codes and pending is None and codes.count(6) == 1
    g = space.decode(codes)
    assert network_key(g) == network_key(zoo)
    assert g != zoo and space.contains(g) and not space.contains(zoo)


def test_edgetpu_is_fused_then_mbconv_relu_no_se():
    space = get_space("edgetpu")
    stages = _stages(space)
    assert [p.values("op") for p in space.positions] == [("fused",)] * 3 + [("mbconv",)] * 3
    assert all(p.values("expand") == (4, 8) and p.values("kernel") == (3, 5) and p.values("se") == (0.0,)
               for p in space.positions)
    assert [p.stride for p in space.positions] == [1, 2, 2, 2, 1, 2]
    assert [g[0].values("filters")[1] for g in stages] == [24, 32, 48, 96, 144, 192]  # EdgeTPU-S's widths
    assert [p.values("layers") for p in space.positions] == [(1, 2), (1, 2, 3), (3, 4, 5), (4, 5, 6), (3, 4, 5),
                                                             (1, 2, 3)]
    assert space.frame.activation == "relu" and space.frame.stem == 32 and space.frame.head == 1280
    assert space.cardinality == 48 * 72 ** 5 == 92_876_046_336


@pytest.mark.parametrize("name", sorted(DISTINCT))
def test_distinct_networks_are_counted_and_stated_in_the_header(name):
    space = get_space(name)
    distinct = distinct_networks(space)
    assert distinct == DISTINCT[name]
    header = (DECLARATIONS / f"{name}.yaml").read_text().split("\nname:")[0]
    assert f"{distinct:,}" in header


def test_the_distinct_count_refuses_spaces_whose_stages_can_merge():
    with pytest.raises(ValueError, match="stage 4 may continue stage 3"):
        distinct_networks(get_space("mnasnet"))  # e.g. 80 filters in blocks 4 and 5 (stride 1)


@pytest.mark.parametrize("name", ["mnasnet", "tiny", "nas-bench-macro", "fbnet", "edgetpu"])
def test_strings_of_every_shipped_space_round_trip_or_refuse_by_name(name):
    """TF strings (with c4/c5 and the stem/act items) are lossless; timm strings are exact or refused naming the
    block; the flat dict (Ray configs) is lossless."""
    import numpy as np

    space = get_space(name)
    rng = np.random.default_rng(11)
    exported, refused = [], 0
    for _ in range(150):
        g = space.sample(rng)
        text = g.to_string()
        assert Genotype.from_string(text) == g and Genotype.from_string(text).to_string() == text
        assert Genotype.from_dict(g.to_dict()) == g
        try:
            timm = g.to_timm()
        except ValueError as err:
            refused += 1
            assert str(err).startswith("block ") and "\n" not in str(err), str(err)
            continue
        exported.append(timm)
        assert Genotype.from_timm(timm) == g and Genotype.from_timm(timm).to_timm() == timm
    assert len(exported) + refused == 150
    if name in ("nas-bench-macro", "fbnet"):
        assert refused > 0  # skip has no timm type
    if name == "edgetpu":  # fused exports as timm's er
        assert exported and all(t.startswith("er_") and ",er_" in t and ",ir_" in t for t in exported)
