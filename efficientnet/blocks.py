"""Step 3 building blocks: MBConv, separable conv, regular conv, TF's c1 block, stem/head.

Structure as in the reference EfficientNet (tensorflow/tpu efficientnet_model
``MBConvBlock``; torchvision ``MBConv``): optional 1x1 expansion, kxk
depthwise conv, squeeze-excite on the expanded features (squeeze width
``max(1, int(in * ratio))``), 1x1 linear projection; BatchNorm after every
conv, SiLU after all but the projection.  The residual exists only with
stride 1 and equal in/out channels (and the skip op on), with stochastic depth
("drop connect") on the residual branch.  MBConv with expand 1 is the
separable conv; the ``conv`` op is MnasNet's regular kxk convolution; ``irpw``
is timm's expand-1 InvertedResidual (1x1 conv in -> in, depthwise, SE,
projection); ``nodw`` is TF's MBConvBlockWithoutDepthwise (a 3x3 expansion
conv only for expand != 1, then the 1x1 projection carries the stride; no SE).

``activation`` (``silu`` default, ``relu``, ``relu6``) is used after every
conv but the projections and inside squeeze-excite, as the references do
with their one ``relu_fn`` / ``act_layer``.

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

from .layout import LayerSpec


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


ACTIVATIONS = {"silu": lambda: nn.SiLU(inplace=True), "relu": lambda: nn.ReLU(inplace=True),
               "relu6": lambda: nn.ReLU6(inplace=True)}


class Norms:
    """BatchNorm factory carrying eps/momentum, and the conv factory for the padding mode."""

    def __init__(self, eps: float = 1e-3, momentum: float = 0.01, same_padding: bool = False,
                 activation: str = "silu") -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        self.eps = eps
        self.momentum = momentum
        self.same_padding = same_padding
        self.activation = activation

    def act(self) -> nn.Module:
        return ACTIVATIONS[self.activation]()

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps, momentum=self.momentum)

    def conv(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
        if self.same_padding and stride > 1:
            return Conv2dSame(cin, cout, k, stride=stride, padding=0, groups=groups, bias=False)
        return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False)


class ConvBNAct(nn.Sequential):
    def __init__(self, norms: Norms, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__(norms.conv(cin, cout, k, stride, groups), norms.bn(cout),
                         norms.act() if act else nn.Identity())


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, squeeze: int, act: nn.Module | None = None) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = act if act is not None else nn.SiLU(inplace=True)
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
    """One layer of a stage: MBConv (any expansion) or MnasNet's regular conv."""

    def __init__(self, spec: LayerSpec, norms: Norms, drop_rate: float = 0.0) -> None:
        super().__init__()
        mid = spec.mid_filters
        self.residual = spec.residual
        self.drop_rate = drop_rate
        project_stride = 1
        if spec.kind in ("mbconv", "irpw"):
            has_expand = spec.expand != 1 or spec.kind == "irpw"
            self.expand = ConvBNAct(norms, spec.in_filters, mid, 1) if has_expand else None
            self.conv = ConvBNAct(norms, mid, mid, spec.kernel, spec.stride, groups=mid)
        elif spec.kind == "conv":
            self.expand = None
            self.conv = ConvBNAct(norms, spec.in_filters, mid, spec.kernel, spec.stride)
        elif spec.kind == "nodw":
            self.expand = ConvBNAct(norms, spec.in_filters, mid, 3) if spec.expand != 1 else None
            self.conv = None
            project_stride = spec.stride
        else:
            raise ValueError(f"unknown block kind {spec.kind!r}")
        self.se = SqueezeExcite(mid, spec.se_filters, norms.act()) if spec.se > 0 else None
        self.project = (ConvBNAct(norms, mid, spec.out_filters, 1, project_stride, act=False)
                        if spec.kind != "conv" else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand is None else self.expand(x)
        if self.conv is not None:
            out = self.conv(out)
        if self.se is not None:
            out = self.se(out)
        if self.project is not None:
            out = self.project(out)
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return out
