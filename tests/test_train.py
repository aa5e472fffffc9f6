"""The per-worker loop in this process (no Ray): learning, EMA on/off, exact resume, export, layouts."""

from __future__ import annotations

import json

import pytest
import torch

from nas.train import checkpoint as ckpt
from nas.train.loop import LocalSession, run_worker
from tests.train_helpers import tiny_job

pytestmark = pytest.mark.training


def _weights(run_dir):
    return torch.load(run_dir / ckpt.WEIGHTS, weights_only=True)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ema_on")
    final = run_worker(tiny_job(run_dir), LocalSession(run_dir))
    return run_dir, final


def test_loss_decreases_and_artefacts(ema_run):
    run_dir, final = ema_run
    history = [json.loads(line) for line in (run_dir / ckpt.METRICS).read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["loss_end"] < history[0]["loss_start"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert {"test_accuracy", "test_ema_accuracy", "holdout_accuracy"} <= final.keys()
    assert json.loads((run_dir / ckpt.RESULT).read_text())["weights"] == "ema"
    assert [p.name for p in ckpt.checkpoints(run_dir)] == ["epoch_0001", "epoch_0002"]
    assert any((run_dir / "tensorboard").iterdir())
    model, spec = ckpt.load_trained(run_dir)  # weights.pt loads strictly into build_model(genotype)
    assert spec.width == 0.25 and spec.num_classes == 10 and spec.stem_stride == 1


def test_ema_on_saves_the_average(ema_run):
    run_dir, _ = ema_run
    state = ckpt.load(ckpt.checkpoints(run_dir)[-1] / ckpt.STATE)
    assert state["ema"] is not None and state["ema"]["updates"] == state["schedule"]["step"] == 32
    assert _same(_weights(run_dir), state["ema"]["module"])
    assert not _same(state["ema"]["module"], state["model"])


def test_ema_off(tmp_path):
    """Also the reference's input pipeline in the loop: Inception crop and AutoAugment."""
    final = run_worker(tiny_job(tmp_path, ema_decay=None, epochs=1, crop="inception", augment="autoaugment"),
                       LocalSession(tmp_path))
    state = ckpt.load(ckpt.checkpoints(tmp_path)[-1] / ckpt.STATE)
    assert state["ema"] is None and final["weights"] == "raw" and "test_ema_accuracy" not in final
    assert "ema_accuracy" not in json.loads((tmp_path / ckpt.METRICS).read_text().splitlines()[0])
    assert _same(_weights(tmp_path), state["model"])


def test_resume_continues_exactly(tmp_path, ema_run):
    """Stop after epoch 1, resume: the weights equal those of the uninterrupted two-epoch run, bit for bit."""
    straight, _ = ema_run
    run_worker(tiny_job(tmp_path, epochs=1), LocalSession(tmp_path))
    run_worker(tiny_job(tmp_path, epochs=2), LocalSession(tmp_path))  # finds epoch_0001 and continues
    history = [json.loads(line) for line in (tmp_path / ckpt.METRICS).read_text().splitlines()]
    assert [(h["epoch"], h["attempt"]) for h in history] == [(1, 1), (2, 2)]
    assert _same(_weights(tmp_path), _weights(straight))
    a = ckpt.load(ckpt.checkpoints(tmp_path)[-1] / ckpt.STATE)
    b = ckpt.load(ckpt.checkpoints(straight)[-1] / ckpt.STATE)
    assert _same(a["model"], b["model"]) and a["schedule"] == b["schedule"]


def test_export_trained_checkpoint_matches_torch(ema_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from nas.cli import main
    from nas.data import load_data
    from nas.export import onnx_session

    run_dir, _ = ema_run
    onnx = tmp_path / "trained.onnx"
    assert main(["export", str(run_dir), "--onnx", str(onnx), "--check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["check_ok"] is True
    model, spec = ckpt.load_trained(run_dir)
    data = load_data(tiny_job(run_dir).data)
    x = torch.from_numpy(data.x_test[:16]).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(data.std).view(1, 3, 1, 1)
    got = onnx_session(onnx).run(["logits"], {"input": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    assert abs(got - want).max() <= 1e-4 and abs(want).max() > 0.01  # trained logits, not ~0
    # a checkpoint folder exports too (its EMA weights), and a run dir fixes the architecture
    assert main(["export", str(run_dir), "--weights", str(ckpt.checkpoints(run_dir)[0]), "--onnx",
                 str(tmp_path / "e1.onnx")]) == 0
    assert main(["export", str(run_dir), "--width", "0.5", "--onnx", str(tmp_path / "x.onnx")]) == 2


def test_weights_load_into_lukemelas_layout(tmp_path):
    """b0 trained with TF 'SAME' padding and a stride-2 stem is lukemelas' model: same logits there.

    Width 0.5, not 0.25: at 0.25 stage 1 maps 8 to 8 channels, where lukemelas' first layer has no
    residual and ours has one (``efficientnet.interop`` refuses that case), so the genotype is not theirs.
    """
    lm = pytest.importorskip("efficientnet_pytorch")
    from efficientnet.interop import to_layout

    run_worker(tiny_job(tmp_path, stem_stride=2, padding="same", epochs=1, ema_decay=None, width=0.5),
               LocalSession(tmp_path))
    ours, spec = ckpt.load_trained(tmp_path)
    theirs = lm.EfficientNet.from_name("efficientnet-b0", width_coefficient=0.5, num_classes=10,
                                       image_size=32).eval()
    theirs.load_state_dict(to_layout(ours.state_dict(), theirs.state_dict(), "lukemelas"), strict=True)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert (a - b).abs().max() <= 1e-4 and a.abs().max() > 0.01
    with pytest.raises(ValueError, match="architectures differ"):
        to_layout(ours.state_dict(), lm.EfficientNet.from_name("efficientnet-b0", num_classes=10).state_dict())


def test_weights_load_into_torchvision_layout(ema_run):
    """Where torchvision imports (the GPU machine): b0 trained with symmetric padding is its efficientnet_b0."""
    tv = pytest.importorskip("torchvision")
    from functools import partial

    from efficientnet import build_model, model_spec
    from efficientnet.interop import to_layout

    spec = model_spec("b0", num_classes=10)
    ours = build_model(spec).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.05)
    theirs = tv.models.efficientnet_b0(num_classes=10, norm_layer=partial(torch.nn.BatchNorm2d, eps=1e-3)).eval()
    theirs.load_state_dict(to_layout(ours.state_dict(), theirs.state_dict(), "torchvision"), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() <= 1e-4
