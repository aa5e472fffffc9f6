"""Step 3 building blocks: one block layer of any op (``Block``), stem/head convs, squeeze-excite.

Structure as in the reference EfficientNet (tensorflow/tpu efficientnet_model
``MBConvBlock``; torchvision ``MBConv``; timm ``InvertedResidual``/``EdgeResidual``/
``DepthwiseSeparableConv``): a block layer is its op's convolutions
(``efficientnet.ops``: at most one each in the slots ``expand``, ``conv``, ``project``),
each followed by BatchNorm and, except the linear projection, by the activation;
squeeze-excite (squeeze width ``max(1, int(in * ratio))``) gates the output of the last
conv before the projection.  The residual exists only with stride 1 and equal in/out
channels (and the skip flag on, and an op that can carry one), with stochastic depth
("drop connect") on the residual branch.

Activations (the frame's, carried by every :class:`LayerSpec`): ``silu`` (EfficientNet's
swish), ``relu`` (MnasNet), ``relu6`` (MobileNetV2, Lite), ``hswish`` (MobileNetV3's
hard-swish, ``nn.Hardswish``), after every conv but the projections; inside squeeze-excite
the frame's SE activation, and a sigmoid gate.

``same_padding=True`` pads like TensorFlow's "SAME" (asymmetric, more at the
bottom/right for stride 2), which the TF-ported weights of lukemelas'
EfficientNet-PyTorch expect; the default is PyTorch's symmetric padding, as in
torchvision and timm.  Output sizes are the same either way.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.genes import ACTIVATIONS as ACTIVATION_NAMES

from .layer import LayerSpec
from .ops import SLOTS, ConvSpec, layer_convs, se_channels


class Conv2dSame(nn.Conv2d):
    """A Conv2d that pads its input like TensorFlow's 'SAME' at run time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


#: Activation modules by name (the names of ``search_spaces.genes.ACTIVATIONS``).
ACTIVATIONS = {"silu": lambda: nn.SiLU(inplace=True), "relu": lambda: nn.ReLU(inplace=True),
               "relu6": lambda: nn.ReLU6(inplace=True), "hswish": lambda: nn.Hardswish(inplace=True)}
if set(ACTIVATIONS) != set(ACTIVATION_NAMES):  # pragma: no cover - a developer's mistake, caught on import
    raise ImportError(f"efficientnet.blocks.ACTIVATIONS {sorted(ACTIVATIONS)} must list {sorted(ACTIVATION_NAMES)}")


def activation(name: str) -> nn.Module:
    """The activation module ``name``; an unknown name lists the known ones."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class Norms:
    """BatchNorm factory carrying eps/momentum, and the conv factory for the padding mode."""

    def __init__(self, eps: float = 1e-3, momentum: float = 0.01, same_padding: bool = False) -> None:
        self.eps = eps
        self.momentum = momentum
        self.same_padding = same_padding

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
        if self.same_padding and stride > 1:
            return Conv2dSame(cin, cout, k, stride=stride, padding=0, groups=groups, bias=False)
        return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False)


class ConvBNAct(nn.Sequential):
    """Conv, BatchNorm and the activation ``act`` (a name; None or "": linear)."""

    def __init__(self, norms: Norms, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: str | None = None) -> None:
        super().__init__(norms.conv(cin, cout, k, stride, groups), norms.bn(cout),
                         activation(act) if act else nn.Identity())

    @classmethod
    def of(cls, conv: ConvSpec, norms: Norms, act: str) -> "ConvBNAct":
        """The module of one conv of a layer (``act`` applied where the conv is activated)."""
        return cls(norms, conv.cin, conv.cout, conv.kernel, conv.stride, conv.cin if conv.depthwise else 1,
                   act if conv.act else None)


class SqueezeExcite(nn.Module):
    """Squeeze-excite (Hu et al. 2018): global pool, 1x1 reduce + ``act``, 1x1 expand, sigmoid gate."""

    def __init__(self, channels: int, squeeze: int, act: nn.Module) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = act
        self.expand = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(self.act(self.reduce(s)))
        return x * torch.sigmoid(s)


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (Huang et al. 2016), as the reference's drop_connect."""
    if rate <= 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    return x * mask / keep


class Block(nn.Module):
    """One block layer of any op: the op's convs in the slots ``expand``, ``conv``, ``project`` (None where
    the op has none), squeeze-excite before the projection, the residual with stochastic depth."""

    def __init__(self, spec: LayerSpec, norms: Norms, drop_rate: float = 0.0) -> None:
        super().__init__()
        if spec.is_identity:
            raise ValueError(f"an identity layer ({spec.kind} {spec.in_filters}->{spec.out_filters}, stride 1) has "
                             "no module; the builder leaves it out")
        convs = layer_convs(spec)
        self.residual = spec.residual
        self.drop_rate = drop_rate
        by_slot = {conv.slot: conv for conv in convs}
        # registered in forward order (expand, conv, se, project): weight interop maps state dicts by position
        for slot in SLOTS:
            if slot == "project":
                self.se = (SqueezeExcite(se_channels(convs), spec.se_filters, activation(spec.se_act or spec.act))
                           if spec.se > 0 else None)
            conv = by_slot.get(slot)
            setattr(self, slot, ConvBNAct.of(conv, norms, spec.act) if conv is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand is not None:
            out = self.expand(out)
        if self.conv is not None:
            out = self.conv(out)
        if self.se is not None:
            out = self.se(out)
        if self.project is not None:
            out = self.project(out)
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out


def layer_module(spec: LayerSpec, norms: Norms, drop_rate: float = 0.0) -> nn.Module:
    """The module of any layer of the walk: stem or head (one activated conv), a block layer, or an identity."""
    if spec.kind in ("stem", "head"):
        return ConvBNAct.of(layer_convs(spec)[0], norms, spec.act)
    return nn.Identity() if spec.is_identity else Block(spec, norms, drop_rate)
