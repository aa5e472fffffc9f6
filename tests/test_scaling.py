"""Compound scaling (efficientnet.compound) and the ``nas scale`` command."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from efficientnet import COEFFICIENTS, count_spec, model_spec
from efficientnet.compound import (PAPER_COEFFICIENTS, CompoundCoefficients, compound_dropout, compound_family,
                                   family_table, grid_candidate, grid_values, official_family, round_resolution,
                                   scale_grid, select_coefficients)
from efficientnet.scaling import OFFICIAL_GMACS, OFFICIAL_PARAMS
from nas.cli import main
from nas.search.results import load_run_genotype
from search_spaces import named_genotype

B0 = named_genotype("b0")


def test_official_family_reproduces_b0_to_b7():
    rows = family_table(B0, official_family())
    assert [r["name"] for r in rows] == [f"b{i}" for i in range(8)]
    assert [r["params"] for r in rows] == list(OFFICIAL_PARAMS)
    for row, gmacs in zip(rows, OFFICIAL_GMACS):
        assert row["macs"] == pytest.approx(gmacs * 1e9, rel=0.01)
    for i, row in enumerate(rows):
        c = COEFFICIENTS[f"efficientnet-b{i}"]
        assert (row["width"], row["depth"], row["resolution"], row["dropout"]) == (c.width, c.depth, c.resolution,
                                                                                   c.dropout)


def test_official_family_bounds():
    assert [m.name for m in official_family(8)][-1] == "b8"
    assert len(official_family(0)) == 1
    with pytest.raises(ValueError, match="ends at b8"):
        official_family(9)


def test_compound_family_doubles_macs_per_phi(capsys):
    rows = family_table(B0, compound_family(CompoundCoefficients(1.2, 1.1, 1.15), max_phi=7))
    ratios = [b["macs"] / a["macs"] for a, b in zip(rows, rows[1:])]
    with capsys.disabled():
        print("\ncompound 1.2/1.1/1.15 MACs ratio per phi step:", " ".join(f"{r:.3f}" for r in ratios))
    # alpha * beta^2 * gamma^2 = 1.92; channel, repeat and resolution rounding moves single steps.
    assert all(1.6 <= r <= 2.4 for r in ratios), ratios
    geometric_mean = (rows[-1]["macs"] / rows[0]["macs"]) ** (1 / 7)
    assert 1.8 <= geometric_mean <= 2.1
    assert all(b["params"] > a["params"] for a, b in zip(rows, rows[1:]))


def test_compound_rounding_documented():
    fam = compound_family(PAPER_COEFFICIENTS, max_phi=7)
    assert fam[0].coefficients == COEFFICIENTS["efficientnet-b0"]  # phi = 0 is the baseline
    # multipliers to 2 decimals, resolution to a multiple of 4
    assert [m.coefficients.width for m in fam] == [1.0, 1.1, 1.21, 1.33, 1.46, 1.61, 1.77, 1.95]
    assert [m.coefficients.depth for m in fam] == [1.0, 1.2, 1.44, 1.73, 2.07, 2.49, 2.99, 3.58]
    assert [m.coefficients.resolution for m in fam] == [224, 256, 296, 340, 392, 452, 520, 596]
    # the dropout ramp reproduces the official dropouts of b0..b7
    assert [m.coefficients.dropout for m in fam] == [COEFFICIENTS[f"efficientnet-b{i}"].dropout for i in range(8)]
    assert compound_dropout(12) == 0.5
    # proxy base resolution
    assert [m.coefficients.resolution for m in compound_family(max_phi=3, base_resolution=32)] == [32, 36, 44, 48]


def test_round_resolution():
    assert round_resolution(257.6) == 256
    assert round_resolution(258.0) == 260  # half-up
    assert round_resolution(36.8) == 36
    assert round_resolution(36.8, divisor=8) == 40
    assert round_resolution(1.0) == 4


@pytest.mark.parametrize("bad", [0.9, -1.0, math.inf, math.nan, True, "1.2"])
def test_coefficients_reject_bad_values(bad):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 1"):
        CompoundCoefficients(bad, 1.1, 1.15)


def test_phi_validation():
    with pytest.raises(ValueError, match="phi must be an integer >= 0"):
        PAPER_COEFFICIENTS.at(-1)
    with pytest.raises(ValueError, match="phi"):
        compound_family(max_phi=1.5)


def test_grid_values():
    assert grid_values(1.0, 1.2, 0.05) == (1.0, 1.05, 1.1, 1.15, 1.2)
    assert grid_values(1.0, 1.0, 0.1) == (1.0,)
    with pytest.raises(ValueError, match="low <= high"):
        grid_values(1.5, 1.0)
    with pytest.raises(ValueError, match="step must be > 0"):
        grid_values(1.0, 1.5, 0.0)


def test_scale_grid_keeps_triples_near_two():
    values = grid_values(1.0, 1.5, 0.05)
    grid = scale_grid(values, values, values, tolerance=0.1)
    assert PAPER_COEFFICIENTS in grid  # 1.2 * 1.1^2 * 1.15^2 = 1.92
    assert all(abs(t.flops_factor - 2.0) <= 0.1 + 1e-12 for t in grid)
    assert len(set(grid)) == len(grid)
    assert grid == sorted(grid, key=lambda t: (t.alpha, t.beta, t.gamma))
    # every triple off the list is really outside the band
    inside = {(t.alpha, t.beta, t.gamma) for t in grid}
    outside = [(a, b, g) for a in values for b in values for g in values if (a, b, g) not in inside]
    assert all(abs(a * b * b * g * g - 2.0) > 0.1 for a, b, g in outside)
    tight = scale_grid(values, values, values, tolerance=0.05)
    assert set(tight) < set(grid) and PAPER_COEFFICIENTS not in tight


def test_scale_grid_errors():
    with pytest.raises(ValueError, match="closest is"):
        scale_grid([1.0], [1.0], [1.0], tolerance=0.5)
    with pytest.raises(ValueError, match=">= 1"):
        scale_grid([0.5, 2.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="tolerance"):
        scale_grid([2.0], [1.0], [1.0], tolerance=-1)
    with pytest.raises(ValueError, match="betas is empty"):
        scale_grid([2.0], [], [1.0])


def test_grid_candidate_is_phi_one():
    spec = grid_candidate(B0, PAPER_COEFFICIENTS, base_resolution=32, num_classes=10, stem_stride=1)
    assert (spec.width, spec.depth, spec.resolution, spec.num_classes, spec.stem_stride) == (1.1, 1.2, 36, 10, 1)


def test_select_coefficients_picks_best_and_implies_family():
    results = [
        {"alpha": 1.2, "beta": 1.1, "gamma": 1.15, "accuracy": 0.61, "macs": 2e6},
        {"alpha": 1.4, "beta": 1.05, "gamma": 1.1, "accuracy": 0.64, "macs": 3e6},
        {"alpha": 1.0, "beta": 1.2, "gamma": 1.2, "accuracy": None},          # failed trial
        {"alpha": 1.1, "beta": 1.1, "gamma": 1.2, "accuracy": float("nan")},  # failed trial
        {"alpha": 1.3, "beta": 1.1, "gamma": 1.1, "accuracy": 0.64, "macs": 2.5e6},  # tie: fewer MACs wins
    ]
    choice = select_coefficients(results, max_phi=3)
    assert choice.coefficients == CompoundCoefficients(1.3, 1.1, 1.1)
    assert choice.result["macs"] == 2.5e6
    assert [m.name for m in choice.family] == ["b0", "b1", "b2", "b3"]
    assert choice.family[1].coefficients.depth == 1.3
    assert choice.family[2].coefficients.width == 1.21
    # order of arrival does not matter
    assert select_coefficients(list(reversed(results)), max_phi=3) == choice
    with pytest.raises(ValueError, match="no grid result has a finite 'accuracy'"):
        select_coefficients(results[2:4])
    with pytest.raises(ValueError, match="lacks gamma"):
        select_coefficients([{"alpha": 1.2, "beta": 1.1, "accuracy": 0.5}])


# --- nas scale ---------------------------------------------------------------------------------------

def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_official_json_contract(capsys):
    rows = _json(capsys, ["scale", "b0", "--json"])
    assert len(rows) == 8
    for key in ("name", "width", "depth", "resolution", "dropout", "params", "macs"):
        assert all(key in r for r in rows)
    assert [r["params"] for r in rows] == list(OFFICIAL_PARAMS)
    assert rows == _json(capsys, ["scale", "b0", "--family", "official", "--json"])


def test_cli_compound(capsys):
    rows = _json(capsys, ["scale", "b0", "--family", "compound", "--phi", "2", "--json"])
    assert [(r["name"], r["width"], r["depth"], r["resolution"]) for r in rows] == [
        ("b0", 1.0, 1.0, 224), ("b1", 1.1, 1.2, 256), ("b2", 1.21, 1.44, 296)]
    assert rows[1]["params"] == count_spec(model_spec("b0", width=1.1, depth=1.2, resolution=256))[0]
    # giving a coefficient selects the compound family
    rows = _json(capsys, ["scale", "b0", "--alpha", "1.3", "--phi", "1", "--resolution", "32", "--json"])
    assert (rows[1]["depth"], rows[1]["width"], rows[1]["resolution"]) == (1.3, 1.1, 36)
    assert main(["scale", "mnasnet-a1", "--family", "compound"]) == 0
    out = capsys.readouterr().out
    assert "alpha*beta^2*gamma^2 = 1.920" in out and "b7" in out


def _write_best(run_dir, genotype_text):
    run_dir.mkdir()
    (run_dir / "best.yaml").write_text(yaml.safe_dump({"genotype": genotype_text, "reward": 0.5}))
    return run_dir


def test_load_run_genotype(tmp_path, capsys):
    a1 = named_genotype("mnasnet-a1")
    run_dir = _write_best(tmp_path / "run", a1.to_string())
    assert load_run_genotype(run_dir) == a1
    assert load_run_genotype(run_dir / "best.yaml") == a1
    rows = _json(capsys, ["scale", str(run_dir), "--json"])
    assert rows[0]["params"] == count_spec(model_spec(a1))[0]


def test_load_run_genotype_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="best.yaml"):
        load_run_genotype(tmp_path)
    bad = _write_best(tmp_path / "bad", "r1_k4_s11")
    with pytest.raises(ValueError, match="bad/best.yaml: genotype"):
        load_run_genotype(bad)
    (tmp_path / "nokey").mkdir()
    (tmp_path / "nokey" / "best.yaml").write_text("reward: 1.0\n")
    with pytest.raises(ValueError, match="key 'genotype'"):
        load_run_genotype(tmp_path / "nokey")


@pytest.mark.parametrize("argv, message", [
    (["--family", "official", "--alpha", "1.2"], "--alpha applies only to --family compound"),
    (["--beta", "0.9"], "beta must be a finite number >= 1"),
    (["--phi", "9"], "official family ends at b8"),
    (["--phi", "-1"], "--phi must be an integer >= 0"),
    (["--gamma", "x"], "expected a positive number"),
    (["--family", "bogus"], "invalid choice"),
])
def test_cli_errors_exit_2(capsys, argv, message):
    assert _exit_code(["scale", "b0", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_missing_run_dir_exit_2(tmp_path, capsys):
    assert _exit_code(["scale", str(tmp_path / "no-such-run")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert _exit_code(["scale", str(tmp_path)]) == 2  # a folder without best.yaml
    assert "best.yaml" in capsys.readouterr().err


def _exit_code(argv):
    """``main``'s exit code, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code
