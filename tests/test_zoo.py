"""The reference zoo and the new block kinds: counts equal the references, the built module agrees, TF/timm meaning."""

from __future__ import annotations

import json

import pytest
import torch

from efficientnet import build_model, count_spec, measure_macs, model_spec, round_filters
from efficientnet.blocks import Block
from efficientnet.layout import walk
from nas.cli import main
from search_spaces import ZOO, BlockGene, Genotype, named_genotype, network_key, resolve_genotype

#: Reference parameter counts at 224x224, 1000 classes (timm 1.0's models; TF's mnasnet_models for d1 and a1).
REFERENCE_PARAMS = {
    "b0": 5_288_548, "mnasnet-a1": 3_887_038, "mnasnet-b1": 4_383_312, "mnasnet-small": 2_030_264,
    "mnasnet-d1": 3_638_404, "spnasnet-100": 4_421_616, "mobilenetv2-100": 3_504_872,
    "efficientnet-lite0": 4_652_008, "fbnet-c": 5_572_200,
}
#: MACs at 224x224 from the layer walk; each is also asserted equal to the hook count of the built module.
MACS = {
    "b0": 385_814_752, "mnasnet-a1": 311_579_072, "mnasnet-b1": 314_415_872, "mnasnet-small": 68_339_184,
    "mnasnet-d1": 967_705_824, "spnasnet-100": 333_467_072, "mobilenetv2-100": 300_774_272,
    "efficientnet-lite0": 385_187_552, "fbnet-c": 384_960_160,
}
#: The issue's example: TF's c1 block; TF's 32-filter stem, 1280-filter head, 1000 classes, 224x224.
TF_C1_EXAMPLE = "r1_k3_s11_e1_i32_o16,r2_k5_s22_e1_i16_o24_c1,r1_k3_s22_e6_i24_o40"


def _cli_json(argv, capsys):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_zoo_is_the_reference_list():
    assert set(ZOO) == set(REFERENCE_PARAMS) == set(MACS)
    for name, entry in ZOO.items():
        assert entry.params == REFERENCE_PARAMS[name]
        assert entry.activation in ("silu", "relu", "relu6")
        assert named_genotype(name).frame.activation == entry.activation  # the genotype carries it (issue 19)
    assert (ZOO["mnasnet-a1"].activation, ZOO["efficientnet-lite0"].activation, ZOO["b0"].activation) == (
        "relu", "relu6", "silu")


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_zoo_counts_equal_the_reference_and_the_built_module(name, capsys):
    data = _cli_json(["show", name, "--json"], capsys)
    assert (data["resolution"], data["num_classes"]) == (224, 1000)
    assert data["params"] == REFERENCE_PARAMS[name]
    assert data["macs"] == MACS[name]
    assert data["activation"] == ZOO[name].activation
    model = build_model(model_spec(name))  # the genotype's activation, no keyword
    assert type(model.stem[2]).__name__ == {"silu": "SiLU", "relu": "ReLU", "relu6": "ReLU6"}[ZOO[name].activation]
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS[name]
    assert measure_macs(model, 224) == MACS[name]
    # the printed strings read back as the same network
    assert resolve_genotype(data["genotype"]) == named_genotype(name)
    if data["timm"] is not None:
        assert Genotype.from_timm(data["timm"]) == named_genotype(name)


def test_zoo_frames_follow_their_builders():
    frames = {name: named_genotype(name).frame for name in ZOO}
    assert (frames["b0"].head_scaling, frames["b0"].stem_scaling) == ("scaled", "scaled")
    for name in ("mnasnet-a1", "mnasnet-b1", "mnasnet-small", "mnasnet-d1", "spnasnet-100"):
        assert (frames[name].head, frames[name].head_scaling, frames[name].stem_scaling) == (1280, "fixed", "scaled")
    assert frames["mnasnet-small"].stem == 8
    assert (frames["fbnet-c"].stem, frames["fbnet-c"].head, frames["fbnet-c"].head_scaling) == (16, 1984, "fixed")
    assert (frames["efficientnet-lite0"].stem_scaling, frames["efficientnet-lite0"].head_scaling) == ("fixed", "fixed")
    assert frames["mobilenetv2-100"].head_scaling == "up"
    # mnasnet-d1's widths (36) are not multiples of 8: timm would round them, so no timm form
    with pytest.raises(ValueError, match="block 2: timm rounds output channels.*c36 would become c40"):
        named_genotype("mnasnet-d1").to_timm()


def test_frame_scaling_rules():
    arch = model_spec("mobilenetv2-100", width=0.5).arch()
    assert (arch.stem, arch.head) == (16, 1280)           # timm: max(1280, round(1280 * 0.5))
    arch = model_spec("mobilenetv2-100", width=1.4).arch()
    assert (arch.stem, arch.head) == (48, 1792)
    arch = model_spec("efficientnet-lite0", width=1.4).arch()
    assert (arch.stem, arch.head, arch.stages[0].in_filters) == (32, 1280, 32)  # fix_stem, fixed head
    arch = model_spec("mnasnet-a1", width=0.5).arch()
    assert (arch.stem, arch.head) == (16, 1280)
    arch = model_spec("b0", width=0.5).arch()
    assert (arch.stem, arch.head) == (16, 640)


def test_tf_c1_example_counts_by_tf_rules():
    """TF's c1 = MBConvBlockWithoutDepthwise: e1 -> a lone strided 1x1 projection; no kxk conv, no SE."""
    spec = model_spec(TF_C1_EXAMPLE)
    assert spec.genotype.blocks[1].op == "nodw" and spec.genotype.frame.is_default
    assert (spec.resolution, spec.num_classes, spec.arch().stem, spec.arch().head) == (224, 1000, 32, 1280)
    assert count_spec(spec) == (1_348_808, 81_674_496)
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == 1_348_808
    assert measure_macs(model, 224) == 81_674_496


def test_tf_c1_block_structure():
    # e > 1: 3x3 expansion conv (stride 1, whatever k says), strided 1x1 projection, residual when it fits
    g = Genotype.from_string("r2_k5_s22_e4_i32_o32_c1")
    first, second = walk(model_spec(g).arch(), 64)[1:3]
    a, b = Block(first, _norms()), Block(second, _norms())
    convs = [m for m in a.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, 128, (3, 3), (1, 1)), (128, 32, (1, 1), (2, 2))]
    assert not a.residual and b.residual and a.se is None
    x = torch.randn(2, 32, 16, 16)
    assert a.eval()(x).shape == (2, 32, 8, 8)
    # k3 and k5 are one network in TF: same counts
    assert count_spec(model_spec(g)) == count_spec(model_spec("r2_k3_s22_e4_i32_o32_c1"))


def test_timm_ir_e1_keeps_its_pointwise_conv():
    """FBNet-C's ir_..._e1: InvertedResidual always has conv_pw; ds has none.  (timm mnasnet_a1's tail: +1,088.)"""
    ir = Genotype.from_timm("ir_r1_k3_s1_e1_c16")
    ds = Genotype.from_timm("ds_r1_k3_s1_e1_c16")
    assert ir.blocks[0].op == "irpw" and ds.blocks[0].op == "mbconv"
    assert ir.to_timm() == "ir_r1_k3_s1_e1_c16" and ds.to_timm() == "ds_r1_k3_s1_e1_c16"
    assert ir.to_string() == "r1_k3_s11_e1_i32_o16_c3"
    a1 = named_genotype("mnasnet-a1")
    tail = a1.to_timm().replace("ds_r1_k3_s1_e1_c16_noskip", "ir_r1_k3_s1_e1_c16_noskip")
    assert count_spec(model_spec(Genotype.from_timm(tail)))[0] == 3_888_126  # timm's count of that string
    assert count_spec(model_spec(a1))[0] == 3_887_038


@pytest.mark.parametrize("genotype, must_mention", [
    ("r1_k3_s33_e1_i32_o16", ["block 1", "stride 1 or 2", "stride 3"]),
    ("r1_k3_s11_e1_i32_o20", ["block 1", "multiples of 8", "c20", "c24"]),
    ("r1_k3_s11_e1_i32_o16_se0.25_c2", ["block 1", "cn", "squeeze-excite"]),
    ("r1_k3_s22_e4_i32_o16_c1", ["block 1", "c1", "stride"]),
    ("r1_k3_s11_e1_i32_o16_c1", ["block 1", "e1", "1x1"]),
    ("r1_k3_s11_e1_i32_o16,r1_k3_s11_e6_i16_o24_se0.1", ["block 2", "squeeze-excite width", "=1,", "=2"]),
    ("stem12,r1_k3_s11_e1_i12_o16", ["stem", "12", "stem12_fixed"]),
])
def test_timm_export_refuses_what_timm_builds_otherwise(genotype, must_mention):
    with pytest.raises(ValueError) as info:
        Genotype.from_string(genotype).to_timm()
    for part in must_mention:
        assert part in str(info.value), str(info.value)


def test_timm_er_is_the_fused_block():
    """timm's er (EdgeResidual: kxk expansion conv with the stride, SE on the expanded features, 1x1 projection) is
    op fused = effnas c4, with every kernel, stride, expansion and SE timm builds the same (issue 19)."""
    for text in ("er_r2_k3_s1_e4_c24", "er_r1_k3_s2_e4_c24", "er_r1_k5_s1_e4_c24", "er_r1_k3_s1_e1_c24_noskip",
                 "er_r1_k3_s1_e4_c24_se0.25"):
        g = Genotype.from_timm(text)
        assert {b.op for b in g.blocks} == {"fused"} and g.to_timm() == text
        assert Genotype.from_string(g.to_string()) == g and "_c4" in g.to_string()
    assert Genotype.from_timm("er_r1_k5_s2_e6_c24").to_string() == "r1_k5_s22_e6_i32_o24_c4"
    # TF's c1 at stride 1 with an expansion is the same network as er k3: it exports so and reads back as fused
    c1 = Genotype.from_string("r1_k5_s11_e4_i32_o24_c1")
    assert c1.to_timm() == "er_r1_k3_s1_e4_c24"
    back = Genotype.from_timm(c1.to_timm())
    assert back.blocks[0].op == "fused" and back != c1 and network_key(back) == network_key(c1)
    # timm rounds the SE width of er by its expansion like ir's: where that differs from TF's rule, refused
    with pytest.raises(ValueError, match="timm builds another network .*block 2: squeeze-excite width differs"):
        Genotype.from_timm("ds_r1_k3_s1_e1_c16,er_r1_k3_s1_e6_c24_se0.1")  # TF's int(1.6) = 1, timm's round = 2
    with pytest.raises(ValueError, match="'fc24'.*force_in_chs"):
        Genotype.from_timm("er_r1_k3_s1_e4_c24_fc24,ir_r1_k3_s1_e6_c24")
    with pytest.raises(ValueError, match="block 1: op skip .*has no timm block type"):
        Genotype.from_string("r1_k1_s22_e1_i32_o24_c5").to_timm()


@pytest.mark.parametrize("text, must_mention", [
    ("er_r1_k3_s2_e4_c24_fc24,ir_r1_k3_s1_e6_c24", ["'er_r1_k3_s2_e4_c24_fc24'", "'fc24'", "force_in_chs"]),
    ("ir_r1_k3_s1_e6_c20", ["timm builds another network", "c20 would become c24"]),
    ("dsa_r1_k3_s1_c16", ["'dsa'", "cannot express", "ds, ir, cn, er"]),
    ("uir_r1_a3_k5_s2_e4_c24", ["'uir'", "cannot express", "ds, ir, cn, er"]),
    ("stem16,mqa_r1_k3_h4_s1_d64_c64", ["'mqa'", "cannot express"]),
    ("ir_r1_k3.5_s1_e6_c16", ["'k3.5'", "mixed kernels"]),
    ("ir_r1_k3_s1_e6_c16_nre", ["'nre'", "allowed"]),
    ("ir_r1_k3_s1_e1.5_c16", ["'e1.5'", "integer"]),
    ("cn_r1_k3_s1_c16_se0.25", ["cn", "ignores se"]),
])
def test_resolve_names_the_unsupported_timm_token(text, must_mention):
    with pytest.raises(ValueError) as info:
        resolve_genotype(text)
    for part in must_mention:
        assert part in str(info.value), str(info.value)


def test_from_timm_accepts_the_nested_arch_def_and_kwargs():
    fb = named_genotype("fbnet-c")
    assert Genotype.from_timm(fb.to_timm_arch_def(), frame=fb.frame) == fb
    assert fb.timm_kwargs() == {"stem_size": 16, "fix_stem": False, "num_features": 1984, "act_layer": "relu"}
    assert named_genotype("b0").timm_kwargs()["act_layer"] == "silu"
    assert named_genotype("efficientnet-lite0").timm_kwargs()["act_layer"] == "relu6"
    assert fb.with_frame(activation="hswish").timm_kwargs()["act_layer"] == "hard_swish"
    with pytest.raises(ValueError, match="SqueezeExcite uses its block's activation"):
        fb.with_frame(se_activation="silu").timm_kwargs()
    sp = ZOO["spnasnet-100"]  # the entry's definition, in the activation it is built with (issue 19)
    assert Genotype.from_timm(sp.definition).with_frame(activation=sp.activation) == named_genotype("spnasnet-100")


def test_frame_items_round_trip_and_dict_form():
    g = named_genotype("mnasnet-small").with_frame(head=1024, head_scaling="up")
    assert g.to_string().startswith("stem8,r1_k3_s11_e1_i8_o8,") and g.to_string().endswith(",head1024_up,act_relu")
    assert Genotype.from_string(g.to_string()) == g
    assert Genotype.from_timm(g.to_timm()) == g
    assert Genotype.from_dict(g.to_dict()) == g
    assert "stem" not in named_genotype("b0").to_dict()  # default frame: the Ray config is unchanged
    with pytest.raises(ValueError, match="TF's efficientnet_builder builds swish .SiLU. networks; this genotype uses "
                                         "relu"):
        g.to_tf()
    with pytest.raises(ValueError, match="TF's efficientnet_model has a 32-filter stem"):
        g.with_frame(activation="silu").to_tf()
    assert named_genotype("b0").to_tf() == named_genotype("b0").to_strings()
    with pytest.raises(ValueError, match="block 1: an expand-1 MBConv with a 1x1 expansion .effnas c3."):
        named_genotype("fbnet-c").with_frame(stem=32, head=1280, head_scaling="scaled").to_tf()


def test_show_frame_options_and_target_config(capsys):
    data = _cli_json(["show", "b0", "--head", "1280", "--head-scaling", "fixed", "--width", "0.5", "--json"], capsys)
    assert data["frame"] == {"stem": 32, "head": 1280, "stem_scaling": "scaled", "head_scaling": "fixed",
                             "stem_stride": 2, "activation": "silu", "se_activation": None}
    assert data["genotype"].endswith(",head1280_fixed") and data["stages"][-1]["out"] == 1280
    assert data["params"] == count_spec(model_spec(named_genotype("b0").with_frame(head_scaling="fixed"), width=0.5))[0]
    from nas.experiment.search import load_experiment

    exp = load_experiment(data={"target": {"stem": 16, "head": 1984, "head_scaling": "fixed"}})
    g = named_genotype("b0")
    assert exp.target.counts(g) == count_spec(model_spec(g.with_frame(stem=16, head=1984, head_scaling="fixed")))
    with pytest.raises(ValueError, match="target.head_scaling"):
        load_experiment(data={"target": {"head_scaling": "down"}})


def test_space_genotypes_have_the_default_frame_and_the_fixed_stem():
    from search_spaces import get_space

    space = get_space("mnasnet")
    a1 = named_genotype("mnasnet-a1")
    space.validate(a1.with_frame(activation="silu"))  # head fixed: a target property, not a decision
    with pytest.raises(ValueError, match="activation relu is not in space 'mnasnet'; its activation is fixed at silu"):
        space.validate(a1)  # ReLU: the genotype carries its activation (issue 19)
    with pytest.raises(ValueError, match="stem 16 is not in space 'mnasnet'"):
        space.validate(named_genotype("b0").with_frame(stem=16))


def test_block_gene_rules_of_the_new_ops():
    with pytest.raises(ValueError, match="irpw has expand fixed at 1, got 6"):
        BlockGene(op="irpw", expand=6)
    with pytest.raises(ValueError, match="no squeeze-excite"):
        BlockGene(op="nodw", expand=4, se=0.25)


def _norms():
    from efficientnet.blocks import Norms

    return Norms()


def test_grammar1_run_dirs_are_converted_and_said(tmp_path, caplog):
    """A best.yaml / trials.jsonl written before grammar 2 (c1 = regular conv) is read as c2, with a warning."""
    import yaml

    from nas.search import results
    from nas.search.results import load_run_genotype

    old = "r1_k3_s11_e1_i32_o16_c1_noskip,r2_k5_s22_e3_i16_o24_se0.25"
    (tmp_path / "best.yaml").write_text(yaml.safe_dump({"genotype": old, "reward": 0.5}))
    with caplog.at_level("WARNING"):
        g = load_run_genotype(tmp_path)
    assert g.blocks[0].op == "conv" and g.to_string().startswith("r1_k3_s11_e1_i32_o16_c2_noskip")
    assert "grammar 2" in caplog.text and "read 1 block(s) as c2" in caplog.text and "replace c1 by c2" in caplog.text
    # a file that says grammar 2 means TF's c1
    (tmp_path / "best.yaml").write_text(yaml.safe_dump({"genotype": old, "grammar": 2}))
    assert load_run_genotype(tmp_path).blocks[0].op == "nodw"
    # trials.jsonl: old rows converted, new rows carry the marker
    (tmp_path / results.TRIALS).write_text(json.dumps({"trial_id": "a", "genotype": old}) + "\n")
    results.append_trial(tmp_path, {"trial_id": "b", "genotype": old})
    rows = results.read_trials(tmp_path)
    assert [Genotype.from_string(r["genotype"]).blocks[0].op for r in rows] == ["conv", "nodw"]
    assert all(r["grammar"] == 2 for r in rows)
    results.write_best(tmp_path, {**rows[0], "reward": 1.0, "accuracy": 0.5, "macs": 1, "params": 1})
    best = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert best["grammar"] == 2 and best["timm"].startswith("cn_r1_k3_s1_c16,")


@pytest.mark.parametrize("width, same_padding", [(0.5, False), (1.3, True)])
def test_new_ops_count_equals_the_built_module(width, same_padding):
    text = ("stem16_fixed,r1_k3_s11_e1_i16_o16_se0.25_c3,r2_k5_s22_e4_i16_o24_c1,r2_k3_s11_e1_i24_o24_c1,"
            "r2_k5_s22_e1_i24_o40_se0.25_c2,head1000_up,act_relu6")
    spec = model_spec(text, width=width, resolution=65, num_classes=10)
    params, macs = count_spec(spec)
    model = build_model(spec, same_padding=same_padding)
    assert any(isinstance(m, torch.nn.ReLU6) for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == params
    assert measure_macs(model, 65) == macs
    assert model.eval()(torch.zeros(1, 3, 65, 65)).shape == (1, 10)
    assert spec.arch().stem == 16 and spec.arch().head == max(1000, round_filters(1000, width))
