"""ONNX export of any (scaled) EfficientNet-style model, and an onnxruntime cross-check.

Uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``):
torch >= 2.9 defaults to the ``torch.export`` exporter, which needs the separate
``onnxscript`` package; the TorchScript path needs nothing beyond torch and
handles every op of the network (conv, BatchNorm, SiLU, sigmoid, mean, linear).
The graph is exported in eval mode (BatchNorm running statistics, no dropout or
stochastic depth) with input ``input`` of shape ``(batch, 3, R, R)`` and output
``logits``; the batch axis is dynamic, the resolution is fixed (the model's
resolution is part of its specification).

``compare_onnx`` runs the file in onnxruntime (the ``[onnx]`` extra, imported lazily)
and returns the largest absolute difference from the PyTorch outputs and the
largest logit.  A freshly initialised network in eval mode has logits of ~1e-10
(kaiming fan-out init shrinks activations ~30x a stage under unit BatchNorm
statistics), so ``calibrate_batchnorm`` first sets the statistics from a random
batch to make such a check mean something.
"""

from __future__ import annotations

import inspect
import io
import logging
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .files import check_writable

LOG = logging.getLogger(__name__)

MIN_OPSET = 17
#: The TorchScript exporter's newest opset (20 in torch 2.9 - 2.13).
try:
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET as MAX_OPSET
except ImportError:  # older torch: its exporter stops at opset 17 - 20; 17 is safe everywhere
    MAX_OPSET = MIN_OPSET
DEFAULT_OPSET = 17
#: torch >= 2.5 chooses the exporter with ``dynamo``; older versions only have the TorchScript one.
_TORCHSCRIPT = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def check_opset(opset: int) -> int:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be an integer in [{MIN_OPSET}, {MAX_OPSET}] (the TorchScript exporter "
                         f"of torch {torch.__version__} stops at {MAX_OPSET}), got {opset!r}; "
                         f"use --opset {DEFAULT_OPSET}")
    return opset


def check_output_path(path: str | Path) -> Path:
    """``path`` as a Path, if it can be written as a file: not a directory, in an existing, writable folder."""
    if Path(path).is_dir():
        raise IsADirectoryError(f"ONNX path {str(path)!r} is a directory; give a file name such as model.onnx")
    return check_writable(path, "--onnx (the ONNX file)")


def require_onnx() -> None:
    """ONNX export needs the ``onnx`` package (the ``[onnx]`` extra): ValueError naming the install if missing."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ValueError("ONNX export needs the onnx package: pip install 'effnas[onnx]' (onnx and onnxruntime)") \
            from None


def export_onnx(model: nn.Module, path: str | Path, resolution: int, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, in_channels: int = 3) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as ONNX; returns the path.

    The model's train/eval mode is restored afterwards.  The folder of ``path``
    must exist.
    """
    check_opset(opset)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    path = check_output_path(path)
    _export(model, torch.zeros(1, in_channels, resolution, resolution), str(path), opset, dynamic_batch)
    LOG.info("exported %s (opset %d, input %dx%dx%d, %d bytes)", path, opset, in_channels, resolution,
             resolution, path.stat().st_size)
    return path


def onnx_bytes(module: nn.Module, input_shape: tuple[int, ...], batch: int = 1, opset: int = DEFAULT_OPSET) -> bytes:
    """``module`` as an in-memory ONNX model for inputs ``(batch, *input_shape)`` (fixed batch)."""
    buffer = io.BytesIO()
    _export(module, torch.zeros(batch, *input_shape), buffer, check_opset(opset), dynamic_batch=False)
    return buffer.getvalue()


def _export(model: nn.Module, dummy: torch.Tensor, f, opset: int, dynamic_batch: bool) -> None:
    """The one call of the TorchScript ONNX exporter: eval mode, its warnings silenced, the mode restored."""
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter announces its own deprecation on every call.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            # TF-"SAME" padding reads the input size while tracing: a constant, as the resolution is fixed.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            with torch.no_grad():
                torch.onnx.export(model, (dummy,), f, opset_version=opset, input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], dynamic_axes=axes, do_constant_folding=True,
                                  **_TORCHSCRIPT)
    finally:
        model.train(was_training)


def onnxruntime(purpose: str = "checking an ONNX file"):
    """The onnxruntime module (the ``[onnx]`` extra, imported on demand); ValueError naming the install if missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ValueError(f"{purpose} needs onnxruntime: pip install 'effnas[onnx]'") \
            from None
    return ort


def onnx_session(path: str | Path):
    """An onnxruntime CPU session for ``path``."""
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxComparison(NamedTuple):
    """onnxruntime against PyTorch on the same inputs."""

    max_abs_diff: float
    max_abs_output: float

    @property
    def scaled_diff(self) -> float:
        """``max_abs_diff / max(1, max_abs_output)``: the difference relative to logits larger than 1."""
        return self.max_abs_diff / max(1.0, self.max_abs_output)


def compare_onnx(path: str | Path, model: nn.Module, inputs: torch.Tensor) -> OnnxComparison:
    """Run ``inputs`` through the ONNX file (onnxruntime, CPU) and ``model`` (eval mode) and compare."""
    session = onnx_session(path)
    got = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.detach().cpu().numpy().astype("float32")})[0]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            want = model(inputs).detach().cpu().numpy()
    finally:
        model.train(was_training)
    if got.shape != want.shape:
        raise ValueError(f"ONNX output shape {got.shape} differs from the PyTorch output shape {want.shape}")
    return OnnxComparison(float(abs(got - want).max()), float(abs(want).max()))


def calibrate_batchnorm(model: nn.Module, inputs: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``inputs`` (one forward pass, no gradients).

    At its initialisation (kaiming fan-out, as torchvision) an EfficientNet in eval
    mode shrinks activations by ~30x a stage, so its logits are ~1e-10 and an
    export check on them proves nothing; with calibrated statistics they are O(1).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    was_training = model.training
    try:
        model.train()
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly its statistics
        with torch.no_grad():
            model(inputs)
    finally:
        for m, (momentum, _) in zip(norms, saved):
            m.momentum = momentum
        model.train(was_training)


def calibration_batch(resolution: int, samples: int = 1024, low: int = 8, high: int = 256) -> int:
    """Images needed so the last (stride-32) feature map gives ``samples`` values per channel, in [low, high].

    Few samples leave some deep channels with a near-zero variance estimate, and
    the calibrated network then amplifies new inputs into logits of ~100.
    """
    final = -(-resolution // 32)
    return max(low, min(high, -(-samples // (final * final))))


def read_state_dict(path: str | Path, what: str = "--weights") -> dict:
    """A state dict saved by ``torch.save`` (or a dict whose ``model`` is one); one ValueError line otherwise.

    Says what the path is when it is not a file (a folder, a symlink loop, missing) and what the file is
    when it is not a state dict (not readable by ``torch.load``, another object, non-tensor values).
    """
    from .files import path_problem

    path = Path(path)
    problem = path_problem(path, "file")
    if problem is not None:
        raise FileNotFoundError(f"{what} {str(path)!r} {problem}; pass a weights file written by torch.save")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user mistake
        raise ValueError(f"{what} {str(path)!r} is not a torch.save'd state dict (torch.load failed: "
                         f"{type(err).__name__}); pass the weights.pt of a `nas train` run or a model's "
                         "state_dict()") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{what} {str(path)!r}: expected a state dict (or a dict with key 'model'), got "
                         f"{type(state).__name__}{' (empty)' if isinstance(state, dict) else ''}")
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        raise ValueError(f"{what} {str(path)!r}: expected a state dict of tensors, but {bad!r} is a "
                         f"{type(state[bad]).__name__}; pass a model's state_dict()")
    return state


def load_weights(model: nn.Module, path: str | Path, what: str = "--weights") -> None:
    """Load a state dict (or a checkpoint dict with a ``model`` state dict) saved by ``torch.save``."""
    apply_state(model, read_state_dict(path, what), f"{what} {str(path)!r}")


def apply_state(model: nn.Module, state: dict, where: str) -> None:
    """``model.load_state_dict(state)``; weights of another genotype or size are one ValueError line."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError, AttributeError) as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        raise ValueError(f"{where}: the weights do not fit this model ({' '.join(lines[:2])}); export the genotype, "
                         "width, depth and number of classes the weights were trained with") from None
