"""ONNX export (nas.export, ``nas export``): every file is run in onnxruntime against PyTorch."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from efficientnet import EfficientNet, ModelSpec, build_model, model_spec
from nas.cli import main
from nas.export import (MIN_OPSET, calibrate_batchnorm, calibration_batch, check_opset, compare_onnx, export_onnx,
                        load_weights)
from search_spaces import Genotype, named_genotype, resolve_genotype

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
#: Exercises MnasNet's regular conv op, no-skip, expand 3 and squeeze-excite.
MIXED = "r1_k3_s11_e1_i32_o16_c1_noskip,r2_k5_s22_e3_i16_o24_se0.25,r2_k3_s22_e6_i24_o40"


def _model(spec: ModelSpec, seed: int = 0, **kwargs) -> EfficientNet:
    """A deterministic model with BatchNorm statistics of a random batch (so its logits are O(1))."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(spec, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    calibrate_batchnorm(model, torch.randn(64, 3, spec.resolution, spec.resolution, generator=gen))
    return model


def _inputs(batch: int, resolution: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spec, kwargs", [
    (model_spec("b0", width=0.25, resolution=64, num_classes=10), {}),
    (ModelSpec(Genotype.from_string(MIXED), width=0.5, depth=1.5, resolution=40, num_classes=7), {}),
    (model_spec("b0", width=0.25, depth=0.3, resolution=48, num_classes=10), {"same_padding": True}),
], ids=["b0-w0.25-r64", "mixed-ops-r40", "b0-same-padding"])
def test_onnxruntime_matches_torch(tmp_path, spec, kwargs):
    model = _model(spec, **kwargs)
    model.train()
    path = export_onnx(model, tmp_path / "m.onnx", spec.resolution)
    assert model.training  # the caller's mode is restored
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= MIN_OPSET
    for batch in (1, 3):  # the batch axis is dynamic
        result = compare_onnx(path, model, _inputs(batch, spec.resolution))
        assert result.max_abs_output > 0.1  # a real check, not a comparison of ~1e-10 logits
        assert result.max_abs_diff <= TOLERANCE, result


#: Every new op (fused, skip as identity and as strided 1x1, irpw, nodw) with hard-swish and a ReLU6 SE.
NEW_OPS = ("stem16,r1_k3_s11_e1_i16_o16_se0.25_c3,r1_k1_s22_e1_i16_o24_c5,r1_k1_s11_e1_i24_o24_c5,"
           "r2_k3_s22_e4_i24_o32_se0.25_c4,r1_k3_s11_e4_i32_o32_c1,act_hswish_se_relu6")


def _silus(graph) -> int:
    """SiLUs of an exported graph: Mul(x, Sigmoid(x)) (an SE gate is Mul(x, Sigmoid(s)) with s another tensor)."""
    sigmoid_of = {node.output[0]: node.input[0] for node in graph.node if node.op_type == "Sigmoid"}
    return sum(1 for node in graph.node if node.op_type == "Mul" and any(
        sigmoid_of.get(a) == b for a, b in (node.input, node.input[::-1])))


@pytest.mark.parametrize("text, present, silus", [
    ("mnasnet-a1", {"Relu", "Sigmoid"}, 0),  # the zoo's A1 is ReLU; Sigmoid: its SE gates only
    (MIXED + ",act_relu", {"Relu", "Sigmoid"}, 0),
    (MIXED, {"Sigmoid"}, 12),  # stem, 2 x (expand, depthwise, SE), 2 x (expand, depthwise), head
    (NEW_OPS, {"HardSwish", "Clip", "Sigmoid"}, 0),
], ids=["mnasnet-a1", "relu", "silu", "new-ops-hswish"])
def test_the_genotypes_activation_is_exported(tmp_path, text, present, silus):
    """The activation travels in the genotype: a ReLU genotype exports Relu and no Sigmoid*Mul (SiLU); new ops too."""
    spec = ModelSpec(resolve_genotype(text), width=0.5, resolution=32, num_classes=10)
    model = _model(spec)
    path = export_onnx(model, tmp_path / "m.onnx", spec.resolution)
    graph = onnx.load(str(path)).graph
    assert present <= {node.op_type for node in graph.node} and _silus(graph) == silus
    result = compare_onnx(path, model, _inputs(2, spec.resolution))
    assert result.max_abs_output > 0.1 and result.scaled_diff <= TOLERANCE, result  # logits up to ~5


def test_calibration_batch():
    assert calibration_batch(32) == 256 and calibration_batch(64) == 256
    assert calibration_batch(224) == 21  # 7 x 7 final map
    assert calibration_batch(600) == 8


def test_calibrate_batchnorm_keeps_momentum_and_mode():
    model = build_model(model_spec("b0", width=0.25, resolution=32, num_classes=10))
    model.eval()
    calibrate_batchnorm(model, _inputs(4, 32))
    assert not model.training
    bn = model.stem[1]
    assert bn.momentum == 0.01 and bn.num_batches_tracked.item() == 1
    assert bn.running_var.mean().item() > 0.01


def test_export_argument_errors(tmp_path):
    model = build_model(model_spec("b0", width=0.25, resolution=32, num_classes=10))
    with pytest.raises(ValueError, match="opset must be an integer in"):
        check_opset(13)
    with pytest.raises(ValueError, match="opset"):
        check_opset(99)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_onnx(model, tmp_path / "missing" / "m.onnx", 32)
    with pytest.raises(IsADirectoryError):
        export_onnx(model, tmp_path, 32)
    with pytest.raises(ValueError, match="resolution"):
        export_onnx(model, tmp_path / "m.onnx", 0)


def test_load_weights(tmp_path):
    spec = model_spec("b0", width=0.25, resolution=32, num_classes=10)
    trained = _model(spec, seed=3)
    torch.save({"model": trained.state_dict(), "epoch": 1}, tmp_path / "ckpt.pt")
    fresh = build_model(spec)
    load_weights(fresh, tmp_path / "ckpt.pt")
    fresh.eval(), trained.eval()
    x = _inputs(2, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), trained(x))
    with pytest.raises(ValueError, match="weights do not fit"):
        load_weights(build_model(model_spec("b0", width=0.25, resolution=32, num_classes=5)), tmp_path / "ckpt.pt")
    with pytest.raises(FileNotFoundError):
        load_weights(fresh, tmp_path / "nope.pt")


# --- nas export --------------------------------------------------------------------------------------

def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_cli_export_check_json(tmp_path, capsys):
    out = tmp_path / "b0.onnx"
    argv = ["export", "b0", "--width", "0.25", "--depth", "0.3", "--resolution", "32", "--num-classes", "10", "--onnx", str(out),
            "--check", "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert out.is_file() and info["onnx"] == str(out) and info["bytes"] == out.stat().st_size
    assert info["opset"] == 17 and info["input_shape"] == ["batch", 3, 32, 32]
    assert (info["width"], info["depth"], info["resolution"], info["num_classes"]) == (0.25, 0.3, 32, 10)
    assert info["check_ok"] is True and info["max_abs_diff"] <= TOLERANCE and info["max_abs_output"] > 0.1


def test_cli_export_run_dir_and_weights(tmp_path, capsys):
    a1 = named_genotype("mnasnet-a1")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.yaml").write_text(yaml.safe_dump({"genotype": a1.to_string()}))
    spec = model_spec(a1, width=0.5, depth=0.3, resolution=32, num_classes=10)
    trained = _model(spec, seed=5)
    torch.save(trained.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "a1.onnx"
    assert main(["export", str(run_dir), "--width", "0.5", "--depth", "0.3", "--resolution", "32", "--num-classes", "10",
                 "--weights", str(tmp_path / "w.pt"), "--onnx", str(out), "--opset", "18"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert max(o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")) == 18
    # the file holds the given weights: it matches the trained model (random weights would differ by O(1))
    assert compare_onnx(out, trained, _inputs(2, 32)).scaled_diff <= TOLERANCE


@pytest.mark.parametrize("extra, message", [
    (["--opset", "13"], "opset must be an integer in [17,"),
    (["--onnx-dir"], "unrecognized arguments"),
    ([], "required: --onnx"),
    (["--weights", "missing.pt"], "weights file"),
    (["--width", "-1"], "expected a positive number"),
])
def test_cli_export_errors_exit_2(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    onnx_args = [] if extra == [] else ["--onnx", "m.onnx"]
    assert _exit_code(["export", "b0", "--resolution", "32", *onnx_args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_cli_export_path_errors_exit_2(tmp_path, capsys):
    assert _exit_code(["export", "b0", "--resolution", "32", "--onnx", str(tmp_path / "no" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _exit_code(["export", "b0", "--resolution", "32", "--onnx", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert _exit_code(["export", "r1_k4_s11_e1_i32_o16", "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "kernel" in capsys.readouterr().err
    assert _exit_code(["export", str(tmp_path / "no-run"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "no such run directory" in capsys.readouterr().err
