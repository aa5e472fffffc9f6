"""Dynamic (elastic) layers: one set of the largest weights, any smaller layer as a view of them.

The sharing follows Once-for-All (Cai et al. 2020, arXiv:1908.09791, section 3.2 and the
``dynamic_op.py`` of its code base), read and re-written here:

* elastic width -- a layer with ``c`` channels uses the LEADING ``c`` output (and input)
  channels of the largest weight, BatchNorm affine pair and running statistics
  (``weight[:cout, :cin]``); OFA sorts channels by importance before shrinking, we keep the
  plain leading slice (no re-ordering step);
* elastic kernel -- a ``k x k`` depthwise kernel is the CENTRE ``k x k`` of the largest one;
  with ``kernel_transform`` the centre is first multiplied by a learned ``k^2 x k^2`` matrix per
  layer and kernel size (OFA's "kernel transformation matrix", initialised to the identity),
  chained from the largest kernel down (7 -> 5 -> 3).

Every slice is a view: choosing a path allocates no parameter, and gradients of a path flow
into the shared tensors.  BatchNorm of a path updates (in training) only the running
statistics of its leading channels, in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DynamicConv2d(nn.Conv2d):
    """A kxk convolution holding the largest weight ``(max_out, max_in // groups, K, K)``.

    ``forward(x, out_channels, kernel)`` convolves with ``weight[:out, :in]`` (``in`` = the
    input's channels) and the centre ``kernel x kernel`` of it; ``depthwise=True`` makes
    ``groups`` follow the channels (``out = in``).  ``kernels`` lists the smaller sizes the
    kernel transform must provide matrices for (only with ``kernel_transform``).
    """

    def __init__(self, max_in: int, max_out: int, max_kernel: int, stride: int = 1, depthwise: bool = False,
                 bias: bool = False, kernels: tuple[int, ...] = (), kernel_transform: bool = False) -> None:
        if depthwise and max_in != max_out:
            raise ValueError(f"a depthwise conv has equal in/out channels, got {max_in} and {max_out}")
        super().__init__(max_in, max_out, max_kernel, stride=stride, padding=(max_kernel - 1) // 2,
                         groups=max_in if depthwise else 1, bias=bias)
        self.depthwise = depthwise
        self.max_kernel = max_kernel
        smaller = sorted({k for k in kernels if k < max_kernel}, reverse=True)
        for k in kernels:
            if k > max_kernel or k % 2 == 0 or k < 1:
                raise ValueError(f"kernel {k} is not an odd size <= the largest kernel {max_kernel}")
        self._chain = tuple(smaller) if kernel_transform else ()
        # OFA's kernel transformation matrices: one (k^2 x k^2) per smaller size, identity at start.
        self.transforms = nn.ParameterDict(
            {f"{k}": nn.Parameter(torch.eye(k * k)) for k in self._chain}) if self._chain else None

    def weight_for(self, in_channels: int, out_channels: int, kernel: int) -> torch.Tensor:
        """The path's weight: leading channels, centre kernel (transformed if enabled); a view when possible."""
        if kernel > self.max_kernel or kernel % 2 == 0:
            raise ValueError(f"kernel {kernel} does not fit the largest kernel {self.max_kernel}")
        w = self.weight[:out_channels] if self.depthwise else self.weight[:out_channels, :in_channels]
        if kernel == self.max_kernel:
            return w
        if self.transforms is None:
            start = (self.max_kernel - kernel) // 2
            return w[:, :, start:start + kernel, start:start + kernel]
        size = self.max_kernel
        for k in self._chain:  # OFA: 7 -> 5 -> 3, each the transformed centre of the previous
            start = (size - k) // 2
            w = w[:, :, start:start + k, start:start + k]
            shape = w.shape
            w = (w.reshape(-1, k * k) @ self.transforms[f"{k}"]).reshape(shape)
            size = k
            if k == kernel:
                return w
        raise ValueError(f"kernel {kernel} has no transform; the layer was built for {self._chain}")

    def bias_for(self, out_channels: int) -> torch.Tensor | None:
        return None if self.bias is None else self.bias[:out_channels]

    def forward(self, x: torch.Tensor, out_channels: int | None = None,  # type: ignore[override]
                kernel: int | None = None) -> torch.Tensor:
        cin = x.shape[1]
        cout = cin if self.depthwise else (self.out_channels if out_channels is None else out_channels)
        k = self.max_kernel if kernel is None else kernel
        return F.conv2d(x, self.weight_for(cin, cout, k), self.bias_for(cout), self.stride, (k - 1) // 2, 1,
                        cin if self.depthwise else 1)


class DynamicBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the largest channel count; an input with ``c`` channels uses the leading ``c``.

    In training the running statistics of those channels are updated in place (the slices are
    views).  ``momentum`` may be changed between calls (BN recalibration sets ``1/(t+1)``: a
    cumulative mean over the calibration batches).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        c = x.shape[1]
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            self.training, self.momentum if self.momentum is not None else 0.0, self.eps)


#: The frame's activations as functions (``efficientnet.blocks.ACTIVATIONS`` as modules; a test checks they agree).
ACT_FUNCTIONS = {"silu": F.silu, "relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish}


def act(x: torch.Tensor, name: str) -> torch.Tensor:
    """Activation ``name`` of a BN output; in place when no gradient is recorded (scoring, recalibration): one
    activation-sized allocation less per layer, the same numbers (the standalone model's is in place)."""
    return ACT_FUNCTIONS[name](x, inplace=not torch.is_grad_enabled())


class DynamicSqueezeExcite(nn.Module):
    """Squeeze-excite over the largest widths; a path uses ``squeeze`` of ``max_squeeze`` channels."""

    def __init__(self, max_channels: int, max_squeeze: int) -> None:
        super().__init__()
        self.reduce = DynamicConv2d(max_channels, max_squeeze, 1, bias=True)
        self.expand = DynamicConv2d(max_squeeze, max_channels, 1, bias=True)

    def forward(self, x: torch.Tensor, squeeze: int, activation: str) -> torch.Tensor:  # type: ignore[override]
        s = x.mean((2, 3), keepdim=True)
        s = ACT_FUNCTIONS[activation](self.reduce(s, squeeze))
        s = self.expand(s, x.shape[1])
        return x * torch.sigmoid(s)


def copy_conv(dst: nn.Conv2d, src: DynamicConv2d, in_channels: int, out_channels: int, kernel: int) -> None:
    """Write the path's (sliced, maybe transformed) weights of ``src`` into the standalone ``dst``."""
    with torch.no_grad():
        w = src.weight_for(in_channels, out_channels, kernel)
        if dst.weight.shape != w.shape:
            raise ValueError(f"conv shapes differ: standalone {tuple(dst.weight.shape)}, path {tuple(w.shape)}")
        dst.weight.copy_(w)
        if dst.bias is not None:
            dst.bias.copy_(src.bias_for(out_channels))


def copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d) -> None:
    """Write the leading channels of ``src`` (affine pair and running statistics) into ``dst``."""
    c = dst.num_features
    with torch.no_grad():
        dst.weight.copy_(src.weight[:c])
        dst.bias.copy_(src.bias[:c])
        dst.running_mean.copy_(src.running_mean[:c])
        dst.running_var.copy_(src.running_var[:c])
