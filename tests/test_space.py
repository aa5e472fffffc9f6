"""The MnasNet factorized space (declared in search_spaces/declarations/mnasnet.yaml): validate, cardinality,
encode/decode, sample, mutate, registry -- the same space, decisions and RNG stream as before it was a declaration."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import search_spaces.registry as registry
from search_spaces import Genotype, SearchSpace, get_space, list_spaces, load_space, named_genotype, register_space


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return get_space("mnasnet")


def _replace_block(g: Genotype, index: int, **changes) -> Genotype:
    blocks = list(g.blocks)
    blocks[index] = dataclasses.replace(blocks[index], **changes)
    return Genotype(tuple(blocks))


def test_reference_networks_are_in_space(space):
    # MnasNet-A1's blocks are a point; A1 itself is a ReLU network, the space's frame SiLU (issue 19)
    for g in (named_genotype("b0"), named_genotype("mnasnet-a1").with_frame(activation="silu")):
        space.validate(g)
        assert space.contains(g)
    with pytest.raises(ValueError, match="activation relu is not in space 'mnasnet'"):
        space.validate(named_genotype("mnasnet-a1"))


def test_cardinality(space):
    assert space.cardinality == 192 ** 2 * 288 ** 5
    assert space.cardinality == math.prod(space.decision_sizes)
    tiny = get_space("tiny")
    assert tiny.cardinality == math.prod(tiny.decision_sizes) == (4 * 2 * 2 * 2 * 2) ** 3 * 2 * 2


def test_decision_sizes_and_names(space):
    sizes = space.decision_sizes
    assert len(sizes) == len(space.decision_names) == 7 * 6
    per_block = [sizes[i:i + 6] for i in range(0, len(sizes), 6)]
    # op, kernel, se, skip, filters, layers; first and last block (base 1 layer) have two layer choices
    assert per_block[0] == [4, 2, 2, 2, 3, 2]
    assert per_block[6] == [4, 2, 2, 2, 3, 2]
    assert all(b == [4, 2, 2, 2, 3, 3] for b in per_block[1:6])
    assert space.decision_names[:6] == ["b1_op", "b1_kernel", "b1_se", "b1_skip", "b1_filters", "b1_layers"]
    assert space.decision_names[-1] == "b7_layers"
    # a copy: callers cannot corrupt the space
    sizes[0] = 99
    assert space.decision_sizes[0] == 4


def test_encode_known_genotype(space):
    codes = space.encode(named_genotype("b0"))
    assert len(codes) == 42
    # block 1 of B0: sepconv (mbconv e1) k3 se0.25 skip, 16 filters, 1 layer
    assert codes[:6] == [1, 0, 1, 0, 1, 0]  # op options: conv, mbconv e1, mbconv e3, mbconv e6
    assert space.decode(codes) == named_genotype("b0")


def test_encode_decode_round_trip(space):
    rng = np.random.default_rng(7)
    for _ in range(500):
        g = space.sample(rng)
        codes = space.encode(g)
        assert all(0 <= c < s for c, s in zip(codes, space.decision_sizes))
        assert space.decode(codes) == g
        assert space.decode(np.asarray(codes)) == g
    for _ in range(200):
        codes = [int(rng.integers(s)) for s in space.decision_sizes]
        assert space.encode(space.decode(codes)) == codes


def test_decode_rejects_bad_decisions(space):
    with pytest.raises(ValueError, match="42 decisions, got 3"):
        space.decode([0, 0, 0])
    codes = [0] * 42
    codes[1] = 2
    with pytest.raises(ValueError) as info:
        space.decode(codes)
    assert "b1_kernel" in str(info.value) and "[0, 1]" in str(info.value) and "2" in str(info.value)


@pytest.mark.parametrize("block, changes, field, allowed", [
    (2, {"kernel": 7}, "kernel=7", "3, 5"),
    (0, {"filters": 40}, "filters=40", "8, 16, 24"),
    (3, {"layers": 7}, "layers=7", "3, 4, 5"),
    (1, {"stride": 1}, "stride=1", "allowed: 2"),
    (4, {"se": 0.5}, "se=0.5", "0.0, 0.25"),
    (5, {"expand": 4}, "op/expand=mbconv/4", "conv/1, mbconv/1, mbconv/3, mbconv/6"),  # the declared options
])
def test_validate_names_block_field_and_allowed(space, block, changes, field, allowed):
    g = _replace_block(named_genotype("b0"), block, **changes)
    with pytest.raises(ValueError) as info:
        space.validate(g)
    message = str(info.value)
    assert f"block {block + 1}" in message and field in message and allowed in message, message
    assert not space.contains(g)


def test_validate_block_count_and_type(space):
    g = Genotype(named_genotype("b0").blocks[:3])
    with pytest.raises(ValueError, match="7 blocks, the genotype has 3"):
        space.validate(g)
    with pytest.raises(TypeError, match="Genotype"):
        space.validate("b0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block 1"):
        space.encode(_replace_block(named_genotype("b0"), 0, kernel=7))


def test_sample_covers_every_option(space):
    rng = np.random.default_rng(0)
    seen = [set() for _ in space.decision_sizes]
    samples = [space.sample(rng) for _ in range(400)]
    for g in samples:
        space.validate(g)
        for i, c in enumerate(space.encode(g)):
            seen[i].add(c)
    assert [len(s) for s in seen] == space.decision_sizes
    # roughly uniform: every op is chosen 20-30% of the time over all blocks
    counts = np.bincount([c for g in samples for c in space.encode(g)[0::6]], minlength=4)
    assert all(0.2 < c / counts.sum() < 0.3 for c in counts), counts


def test_sample_is_reproducible_and_uses_given_rng(space):
    a = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    rng = np.random.default_rng(3)
    assert space.sample(rng) != space.sample(rng)  # the generator advances (7e16 points)


def test_mutate_changes_and_stays_in_space(space):
    rng = np.random.default_rng(11)
    g = named_genotype("b0")
    for _ in range(300):
        child = space.mutate(g, rng)
        assert child != g
        space.validate(child)
        diff = [a != b for a, b in zip(space.encode(g), space.encode(child))]
        assert sum(diff) == 1
        g = child
    for num in (2, 5):
        child = space.mutate(g, rng, num=num)
        assert sum(a != b for a, b in zip(space.encode(g), space.encode(child))) == num


def test_mutate_reaches_every_decision(space):
    rng = np.random.default_rng(2)
    g = named_genotype("mnasnet-a1").with_frame(activation="silu")
    changed = set()
    for _ in range(1000):
        child = space.mutate(g, rng)
        changed |= {i for i, (a, b) in enumerate(zip(space.encode(g), space.encode(child))) if a != b}
    assert changed == set(range(42))


def test_a_one_decision_mutation_draws_what_choice_without_replacement_draws(space):
    """mutate(num=1) picks the decision with rng.integers; the sequences stay those of rng.choice(replace=False)
    (results saved and benched before the change reproduce)."""
    def reference(genotype, rng):
        decisions, sizes = space.encode(genotype), space.decision_sizes
        mutable = [i for i, size in enumerate(sizes) if size > 1]
        i = mutable[int(rng.choice(len(mutable), size=1, replace=False)[0])]
        decisions[i] = (decisions[i] + int(rng.integers(1, sizes[i]))) % sizes[i]
        return space.decode(decisions)

    a, b = np.random.default_rng(5), np.random.default_rng(5)
    g = h = named_genotype("b0")
    for _ in range(200):
        g, h = space.mutate(g, a), reference(h, b)
        assert g == h
    assert a.integers(1 << 30) == b.integers(1 << 30)


def test_equal_spaces_decode_a_code_to_one_object(space):
    """A table's space, the experiment's and a worker's copy share their memory: caches keyed by genotypes
    (network keys) find the object by identity, without a field-by-field comparison."""
    code = space.encode(named_genotype("b0"))
    twin = SearchSpace(space.to_declaration())
    assert twin is not space and twin == space
    assert twin.decode(code) is space.decode(code)


def test_mutate_skips_single_option_decisions():
    tiny = get_space("tiny")
    rng = np.random.default_rng(4)
    g = tiny.sample(rng)
    fixed = [i for i, s in enumerate(tiny.decision_sizes) if s == 1]
    assert fixed  # block 1 has a single layers option
    for _ in range(100):
        child = tiny.mutate(g, rng)
        assert child != g
        assert all(tiny.encode(child)[i] == 0 for i in fixed)


def test_out_of_space_genotype_cannot_mutate(space):
    with pytest.raises(ValueError, match="kernel"):
        space.mutate(_replace_block(named_genotype("b0"), 0, kernel=7), np.random.default_rng(0))


def test_registry(monkeypatch):
    monkeypatch.setattr(registry, "_SPACES", dict(registry._SPACES))
    assert {"mnasnet", "tiny"} <= set(list_spaces())
    with pytest.raises(ValueError, match="already registered"):
        register_space("mnasnet", lambda: load_space("mnasnet"))
    with pytest.raises(ValueError) as info:
        get_space("nope")
    assert "'nope'" in str(info.value) and "mnasnet" in str(info.value) and "tiny" in str(info.value)
    register_space("mine", lambda: load_space("mnasnet"))
    assert get_space("mine").cardinality == get_space("mnasnet").cardinality
    # a fresh space each time: no shared mutable state between users
    assert get_space("mnasnet") is not get_space("mnasnet")


def test_space_needs_stages():
    with pytest.raises(ValueError, match="at least one stage"):
        SearchSpace({"name": "empty", "stages": []})
