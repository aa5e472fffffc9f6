"""`nas show` and `nas scale`: JSON keys and exact numbers, and user mistakes (exit 2, one line, no traceback)."""

from __future__ import annotations

import json

import pytest

from efficientnet.scaling import B0_MACS, OFFICIAL_PARAMS
from nas.cli import main
from search_spaces import named_genotype


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``nas ARGV``; argparse's own errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_show_b0_json(capsys):
    code, out, err = run_cli(["show", "b0", "--json"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert {"genotype", "width", "depth", "resolution", "params", "macs"} <= set(data)
    assert data["genotype"] == named_genotype("b0").to_string()
    assert (data["width"], data["depth"], data["resolution"]) == (1.0, 1.0, 224)
    assert data["params"] == OFFICIAL_PARAMS[0]
    assert data["macs"] == B0_MACS


def test_show_model_b3(capsys):
    code, out, _ = run_cli(["show", "b0", "--model", "efficientnet-b3", "--json"], capsys)
    data = json.loads(out)
    assert code == 0
    assert (data["width"], data["depth"], data["resolution"]) == (1.2, 1.4, 300)
    assert data["params"] == OFFICIAL_PARAMS[3]
    assert data["macs"] == pytest.approx(1.827e9, rel=0.01)


def test_show_overrides_and_text_output(capsys):
    code, out, _ = run_cli(["show", "mnasnet-a1", "--width", "0.5", "--resolution", "32", "--num-classes", "10",
                            "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and (data["width"], data["resolution"]) == (0.5, 32)
    code, text, _ = run_cli(["show", "b0"], capsys)
    assert code == 0 and "5,288,548" in text and "params" in text


def test_show_accepts_timm_strings(capsys):
    code, out, _ = run_cli(["show", named_genotype("b0").to_timm(), "--json"], capsys)
    assert code == 0 and json.loads(out)["params"] == OFFICIAL_PARAMS[0]


def test_scale_b0_json(capsys):
    code, out, err = run_cli(["scale", "b0", "--json"], capsys)
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert len(rows) == 8
    for row in rows:
        assert {"name", "width", "depth", "resolution", "dropout", "params", "macs"} <= set(row)
    assert [row["params"] for row in rows] == list(OFFICIAL_PARAMS)
    assert [row["resolution"] for row in rows] == [224, 240, 260, 300, 380, 456, 528, 600]
    assert rows[0]["macs"] == B0_MACS


@pytest.mark.parametrize("argv, must_mention", [
    (["show", "nope"], ["'nope'", "b0"]),                                             # unknown name
    (["scale", "nope"], ["'nope'", "b0"]),
    (["show", "r1_k3_s11_e1_i32_o16_zz"], ["'zz'", "allowed"]),                       # malformed string
    (["show", "r1_k3_s12_e1_i32_o16"], ["'s12'"]),
    (["scale", "r1_k3_s11_e1_i32_o16,r1_k3_s22_e6_i24_o24"], ["i24", "i16"]),        # broken channel chain
    (["show", "r1_k4_s11_e1_i32_o16"], ["kernel", "odd"]),                            # not a point of any space
    (["show", "r1_k3_s11_e6_i32_o16_c2"], ["expand"]),
    (["show", "er_r1_k3_s2_e4_c24_fc24"], ["'fc24'", "force_in_chs"]),                # timm token, inexpressible
    (["show", "uir_r1_a3_k5_s2_e4_c24"], ["uir", "cannot express"]),                 # unsupported first type
    (["show", "dsa_r1_k3_s1_c16"], ["dsa", "ds, ir, cn, er"]),
    (["show", "b0", "--stem", "0"], ["--stem"]),
    (["show", "b0", "--width", "-1"], ["--width", "-1"]),                              # negative width
    (["show", "b0", "--width=-0.5"], ["--width"]),
    (["show", "b0", "--depth", "0"], ["--depth"]),
    (["show", "b0", "--resolution", "abc"], ["--resolution"]),
    (["show", "b0", "--model", "efficientnet-b9"], ["efficientnet-b9"]),
])
def test_user_mistakes_exit_2_one_line(argv, must_mention, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for part in must_mention:
        assert part in lines[0], lines[0]
