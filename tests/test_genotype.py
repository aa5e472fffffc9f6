"""Genotype value semantics and its three string/dict forms (TF block strings, timm, flat dict)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from search_spaces import BLOCK_SEPARATOR, BlockGene, Genotype, get_space, named_genotype, resolve_genotype
from search_spaces.named import EFFICIENTNET_B0, MNASNET_A1

N_RANDOM = 500


def _random_genotypes(space_name: str, n: int = N_RANDOM, seed: int = 1234) -> list[Genotype]:
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


@pytest.fixture(scope="module", params=["mnasnet", "tiny"])
def random_genotypes(request) -> list[Genotype]:
    return _random_genotypes(request.param)


# -- round trips ---------------------------------------------------------------

def test_tf_string_round_trip_random(random_genotypes):
    for g in random_genotypes:
        text = g.to_string()
        back = Genotype.from_string(text)
        assert back == g, text
        assert back.to_string() == text
        # the list form parses to the same value
        assert Genotype.from_string(g.to_strings()) == g


def test_tf_string_round_trip_with_other_stem(random_genotypes):
    for g in random_genotypes[:50]:
        text = g.to_string(stem=16)
        first, blocks = text.split(BLOCK_SEPARATOR)[0], text.split(BLOCK_SEPARATOR)[1:]
        assert first == "stem16" and "_i16_" in blocks[0]
        assert Genotype.from_string(text) == g.with_frame(stem=16)
        # the bare block strings with the stem passed in
        assert Genotype.from_string(blocks, stem=16) == g.with_frame(stem=16)


def test_timm_round_trip_is_identity_or_error(random_genotypes):
    """Property: every genotype exports to timm and back unchanged, or export raises naming block and reason."""
    refused = 0
    for g in random_genotypes:
        try:
            text = g.to_timm()
        except ValueError as err:
            refused += 1
            assert str(err).startswith("block ") and "\n" not in str(err)
            index = int(str(err).split()[1].rstrip(":")) - 1
            block = g.blocks[index]
            assert block.op == "conv" and block.se > 0, (g.to_string(), err)  # the space's only inexpressible block
            continue
        assert Genotype.from_timm(text) == g, text
        assert Genotype.from_timm(g.to_timm_arch_def()) == g                 # the nested list timm takes
        assert Genotype.from_timm(b[0] for b in g.to_timm_arch_def()) == g   # a flat list
        assert Genotype.from_string(Genotype.from_timm(text).to_string()) == g
    assert 0 < refused < len(random_genotypes)


def test_timm_to_tf_round_trip_of_timm_strings():
    """Property the other way: random timm strings (all four readable types) -> genotype -> TF -> timm."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        items, cin = [], 32
        for _ in range(int(rng.integers(1, 6))):
            kind = str(rng.choice(["ds", "ir", "ir1", "cn", "er"]))
            c = int(rng.choice([8, 16, 24, 32]))
            s = 1 if kind == "er" else int(rng.choice([1, 2]))
            k = 3 if kind == "er" else int(rng.choice([3, 5, 7]))
            se = "_se0.25" if kind in ("ds", "ir", "ir1") and rng.random() < 0.5 else ""
            e = {"ds": "_e1", "ir": f"_e{int(rng.choice([3, 6]))}", "ir1": "_e1", "cn": "",
                 "er": f"_e{int(rng.choice([2, 4]))}"}[kind]
            flag = str(rng.choice(["", "_noskip"])) if kind != "cn" else str(rng.choice(["", "_skip"]))
            items.append(f"{kind[:2]}_r{int(rng.integers(1, 4))}_k{k}_s{s}{e}_c{c}{se}{flag}")
            cin = c
        text = ",".join(items)
        g = Genotype.from_timm(text)
        assert Genotype.from_string(g.to_string()) == g, text
        assert Genotype.from_timm(g.to_timm()) == g, text


def test_dict_round_trip_random(random_genotypes):
    for g in random_genotypes:
        d = g.to_dict()
        assert all(isinstance(v, (int, float, str, bool)) for v in d.values())
        assert Genotype.from_dict(d) == g


def test_named_genotypes_match_reference_strings():
    b0 = named_genotype("b0")
    assert b0.to_string() == EFFICIENTNET_B0
    assert [b.layers for b in b0.blocks] == [1, 2, 2, 3, 3, 4, 1]
    assert [b.filters for b in b0.blocks] == [16, 24, 40, 80, 112, 192, 320]
    a1 = named_genotype("mnasnet-a1")
    assert a1.to_string() == MNASNET_A1 + ",act_relu"  # TF's mnasnet_models builds A1 with ReLU (issue 19)
    assert a1.frame.activation == "relu" and a1.with_frame(activation="silu").to_string() == MNASNET_A1
    with pytest.raises(ValueError, match="TF's efficientnet_builder builds swish .SiLU. networks; this genotype uses "
                                         "relu"):
        a1.to_tf()
    assert a1.blocks[0].skip is False and a1.blocks[2].expand == 3
    # timm's own arch def of efficientnet_b0 (timm _gen_efficientnet), without the stage nesting
    assert b0.to_timm().startswith("ds_r1_k3_s1_e1_c16_se0.25,ir_r2_k3_s2_e6_c24_se0.25")
    assert resolve_genotype(b0.to_timm()) == b0
    assert resolve_genotype(" b0 ") == b0


def test_conv_op_forms():
    g = Genotype((BlockGene(op="conv", kernel=5, stride=2, expand=1, se=0.0, skip=True, filters=24, layers=2),))
    assert g.to_string() == "r2_k5_s22_e1_i32_o24_c2"
    assert g.to_timm() == "cn_r2_k5_s2_c24_skip"
    assert Genotype.from_string(g.to_string()) == g
    assert Genotype.from_timm(g.to_timm()) == g
    with_se = Genotype((dataclasses.replace(g.blocks[0], se=0.25),))
    assert with_se.to_string() == "r2_k5_s22_e1_i32_o24_se0.25_c2"
    with pytest.raises(ValueError, match="block 1: timm's cn .ConvBnAct. has no squeeze-excite"):
        with_se.to_timm()
    # timm's cn default is no skip; ds/ir default is skip
    assert Genotype.from_timm("cn_r1_k3_s1_c16").blocks[0].skip is False
    assert Genotype.from_timm("ds_r1_k3_s1_c16").blocks[0].skip is True
    assert Genotype.from_timm("ds_r1_k3_s1_c16_noskip").blocks[0].skip is False


# -- value semantics -------------------------------------------------------------

def test_hashable_and_equal_by_value():
    a = Genotype.from_string(EFFICIENTNET_B0)
    b = Genotype.from_string(EFFICIENTNET_B0.replace(",", " , "))
    assert a == b and hash(a) == hash(b)
    assert a is not b
    assert len({a, b, named_genotype("mnasnet-a1")}) == 2
    assert {a: 1}[b] == 1
    # frozen
    with pytest.raises(AttributeError):
        a.blocks = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.blocks[0].kernel = 5  # type: ignore[misc]
    # a list of blocks is frozen into a tuple
    c = Genotype(list(a.blocks))  # type: ignore[arg-type]
    assert isinstance(c.blocks, tuple) and c == a


def test_random_genotypes_are_distinct_values():
    gs = _random_genotypes("mnasnet", 200, seed=5)
    assert len(set(gs)) == len({g.to_string() for g in gs}) > 190


def test_se_int_is_stored_as_float():
    gene = BlockGene(se=0)
    assert isinstance(gene.se, float) and gene == BlockGene(se=0.0)


# -- strict parsing ---------------------------------------------------------------

GOOD = "r1_k3_s11_e1_i32_o16_se0.25"


@pytest.mark.parametrize("text, must_mention", [
    (GOOD + "_zz", ["'zz'", "allowed keys", "noskip"]),                              # unknown token
    (GOOD + "_x1", ["'x1'", "allowed keys"]),                                        # unknown key letter
    ("r1_k3_k5_s11_e1_i32_o16", ["'k5'", "repeats", "'k'"]),                        # repeated key
    (GOOD + "_noskip_noskip", ["'noskip'", "repeats"]),                              # repeated flag
    ("r1_k3_s11_e1_i32", ["missing", "o", "r k s e i o"]),                           # missing key
    ("k3_s11_e1_i32_o16", ["missing", "r"]),                                         # missing key
    ("r1_kx_s11_e1_i32_o16", ["'kx'", "integer"]),                                   # bad value
    (GOOD.replace("se0.25", "se"), ["'se'", "ratio"]),                               # bad value
    (GOOD.replace("se0.25", "se1.5"), ["se", "[0, 1]"]),                             # bad value (range)
    ("r1_k4_s11_e1_i32_o16", ["kernel", "odd", "4"]),                                # bad value (even kernel)
    ("r1_k3_s12_e1_i32_o16", ["'s12'", "s11 or s22"]),                               # unequal strides
    ("r1_k3_s00_e1_i32_o16", ["'s00'", "s11 or s22"]),
    (GOOD + ",r1_k3_s11_e1_i24_o16", ["block 2", "i24", "o16", "i16"]),              # broken channel chain
    ("r1_k3_s11_e1_i8_o16", ["block 1", "i8", "stem", "i32"]),                       # first block vs stem
    (GOOD + "_c6", ["c6", "c0", "c1", "c2", "c3", "c4", "c5"]),                                  # conv type
    ("r1_k3_s11_e6_i32_o16_c2", ["expand", "1"]),                                    # regular conv has no expansion
    ("r1_k3_s11_e6_i32_o16_c3", ["expand", "irpw", "mbconv"]),                       # irpw is expand 1 only
    (GOOD + "_c1", ["c1", "squeeze-excite", "se0.25"]),                              # TF's c1 has no SE
    ("stem16," + GOOD, ["block 1", "i32", "stem16"]),                                # stem item vs first block
    ("stem8_x," + GOOD, ["stem8_x", "stem<N>[_fixed]"]),                               # bad stem item
    (GOOD + ",head1280_down", ["head1280_down", "_up"]),                             # bad head item
    (GOOD + ",head1280," + GOOD.replace("i32", "i16"), ["head", "last item"]),       # head item not last
    ("stem16", ["at least one block"]),
    (GOOD + ",,", ["empty block", "','"]),                                           # empty block
    ("", ["empty block"]),
    (GOOD + ", ", ["empty block"]),
])
def test_from_string_rejects(text, must_mention):
    with pytest.raises(ValueError) as info:
        Genotype.from_string(text)
    message = str(info.value)
    for part in must_mention:
        assert part in message, (text, message)
    assert "\n" not in message


@pytest.mark.parametrize("text, must_mention", [
    ("xx_r1_k3_s1_c16", ["'xx'", "ds, ir, cn"]),
    ("ds_r1_k3_s1_c16_q7", ["'q7'", "allowed"]),
    ("ds_r1_k3_s1", ["missing", "c"]),
    ("ds_r1_k3_s1_e6_c16", ["'ds'", "ir"]),
    ("ir_r1_k3_k5_s1_e6_c16", ["repeats", "'k'"]),
    ("cn_r1_k3_s1_c16_skip_noskip", ["skip", "noskip"]),
])
def test_from_timm_rejects(text, must_mention):
    with pytest.raises(ValueError) as info:
        Genotype.from_timm(text)
    for part in must_mention:
        assert part in str(info.value), (text, str(info.value))


def test_from_dict_rejects():
    d = named_genotype("b0").to_dict()
    with pytest.raises(ValueError, match="num_blocks"):
        Genotype.from_dict({k: v for k, v in d.items() if k != "num_blocks"})
    missing = dict(d)
    del missing["b3_kernel"]
    with pytest.raises(ValueError, match="b3_kernel"):
        Genotype.from_dict(missing)
    with pytest.raises(ValueError, match="b9_kernel"):
        Genotype.from_dict({**d, "b9_kernel": 3})
    with pytest.raises(ValueError, match="kernel"):
        Genotype.from_dict({**d, "b1_kernel": 4})
    with pytest.raises(ValueError, match="skip"):
        Genotype.from_dict({**d, "b1_skip": "yes"})


@pytest.mark.parametrize("kwargs, field", [
    ({"op": "pool"}, "op"), ({"kernel": 0}, "kernel"), ({"kernel": True}, "kernel"), ({"stride": 1.5}, "stride"),
    ({"se": -0.1}, "se"), ({"se": True}, "se"), ({"skip": 1}, "skip"), ({"filters": -8}, "filters"),
    ({"layers": 0}, "layers"), ({"op": "conv", "expand": 6}, "expand"),
])
def test_block_gene_validates(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BlockGene(**kwargs)


def test_genotype_needs_blocks():
    with pytest.raises(ValueError, match="at least one block"):
        Genotype(())
    with pytest.raises(TypeError, match="BlockGene"):
        Genotype(("r1_k3_s11_e1_i32_o16",))  # type: ignore[arg-type]


def test_resolve_genotype_rejects_garbage():
    with pytest.raises(ValueError) as info:
        resolve_genotype("efficientnet-b9")
    assert "b0" in str(info.value) and "mnasnet-a1" in str(info.value)
    with pytest.raises(ValueError, match="unknown genotype name"):
        named_genotype("b1")
