"""The op registry, facts side: what each block op is, which fields it takes, how strings name it.

One :class:`OpFacts` per op, defined once here (no torch).  Everything that needs the op's
*facts* reads them from :data:`OPS`: the genes' validation (which fields an op pins), the
layer walk (does the op expand? can it carry the identity residual?), the string grammars
(TF conv type, timm block type) and the declared spaces (which fields an option may set).
The *torch* side of each op -- its module, its count, its latency key, its supernet weights
-- lives in ``efficientnet`` under the same names; a test checks the two registries list the
same ops.

The ops (``kernel`` k, ``expand`` e, ``se`` the squeeze-excite ratio of the block's input
channels, ``skip`` the identity residual where stride is 1 and in == out):

* ``mbconv`` -- MBConv (Sandler et al. 2018; tensorflow/tpu ``efficientnet_model.MBConvBlock``):
  a 1x1 expansion conv only when ``e != 1``, a kxk depthwise conv with the stride, optional SE,
  a linear 1x1 projection.  At ``e == 1`` it is MnasNet's separable conv (timm's ``ds``).
* ``conv`` -- MnasNet's regular conv (Tan et al. 2019, section 4.1): one kxk conv in -> out with
  the stride, BN, activation; optional SE on its output.  ``e`` is pinned at 1.
* ``nodw`` -- tensorflow/tpu ``MBConvBlockWithoutDepthwise`` (TF's ``c1``): a **3x3** expansion
  conv (stride 1) only when ``e != 1``, then a 1x1 projection with the stride; no depthwise conv,
  no SE (``se`` pinned at 0).  ``kernel`` is kept as written but has no effect, as in TF.
* ``irpw`` -- timm's ``InvertedResidual`` at expansion 1: it keeps its 1x1 ``conv_pw`` (in -> in)
  before the depthwise conv.  ``e`` is pinned at 1.
* ``fused`` -- fused MBConv as timm's ``EdgeResidual`` (Gupta & Tan 2019, EfficientNet-EdgeTPU):
  a kxk expansion conv in -> in*e **with the stride**, BN, activation, optional SE on the
  expanded features, a linear 1x1 projection.
* ``skip`` -- the layer is absent: the identity where stride is 1 and in == out (zero cost),
  otherwise a 1x1 conv with the stride + BN and no activation (NAS-Bench-Macro's identity op).
  ``kernel`` 1, ``e`` 1, ``se`` 0 and ``skip`` (the residual flag) true are pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

#: The layer fields of a block an op can read (``stride``, ``filters`` and ``layers`` every op takes).
OP_FIELDS = ("kernel", "expand", "se", "skip")


@dataclass(frozen=True)
class OpFacts:
    """The facts of one op: fields it pins, whether it expands or can be residual, its string tokens."""

    name: str
    summary: str
    pinned: Mapping[str, object] = field(default_factory=dict)  # field -> the only value it may have
    expanding: bool = True  # mid channels = in * expand (False: mid = out, the regular conv)
    residual: bool = True  # can carry the identity residual (skip flag honoured)
    tf_conv_type: int = 0  # the ``c`` token of (effnas) TF block strings
    tf_native: bool = False  # TF's efficientnet_builder builds it (conv types 0 and 1)
    timm_type: str | None = None  # timm block type (``ds``/``ir`` chosen by expansion for mbconv)

    def __post_init__(self) -> None:
        unknown = set(self.pinned) - set(OP_FIELDS)
        if unknown:
            raise ValueError(f"op {self.name!r} pins unknown field(s) {sorted(unknown)}; fields: {OP_FIELDS}")
        object.__setattr__(self, "pinned", MappingProxyType(dict(self.pinned)))

    def check(self, values: Mapping[str, object]) -> None:
        """ValueError naming the field when ``values`` gives a pinned field another value."""
        for name, want in self.pinned.items():
            if name in values and values[name] != want:
                raise ValueError(f"op {self.name} has {name} fixed at {_show(want)}, got {_show(values[name])}"
                                 + _PIN_HINT.get((self.name, name), ""))


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


_PIN_HINT = {
    ("conv", "expand"): "; a regular conv has no expansion",
    ("irpw", "expand"): "; op irpw is the expand-1 inverted residual, use op mbconv for other ratios",
    ("nodw", "se"): "; TF's c1 block (MBConvBlockWithoutDepthwise) has no squeeze-excite (TF ignores se there)",
    ("skip", "kernel"): "; op skip is absent or a 1x1 conv",
    ("skip", "expand"): "; op skip has no expansion",
    ("skip", "se"): "; op skip has no squeeze-excite",
    ("skip", "skip"): "; op skip has no residual of its own (noskip means nothing there)",
}

_ALL = (
    OpFacts("mbconv", "MBConv: [1x1 expand], kxk depthwise (stride), [SE], 1x1 linear projection",
            tf_conv_type=0, tf_native=True, timm_type="ir"),
    OpFacts("nodw", "TF MBConvBlockWithoutDepthwise: [3x3 expand], 1x1 projection with the stride; no SE",
            pinned={"se": 0.0}, tf_conv_type=1, tf_native=True, timm_type="er"),
    OpFacts("conv", "MnasNet regular conv: kxk conv (stride), BN, activation, [SE]",
            pinned={"expand": 1}, expanding=False, tf_conv_type=2, timm_type="cn"),
    OpFacts("irpw", "timm expand-1 InvertedResidual: 1x1 conv in->in, kxk depthwise (stride), [SE], 1x1 projection",
            pinned={"expand": 1}, tf_conv_type=3, timm_type="ir"),
    OpFacts("fused", "fused MBConv (timm EdgeResidual): kxk expand conv (stride), [SE], 1x1 linear projection",
            tf_conv_type=4, timm_type="er"),
    OpFacts("skip", "no layer: identity, or a 1x1 conv (stride) + BN where stride or channels change",
            pinned={"kernel": 1, "expand": 1, "se": 0.0, "skip": True}, residual=False, tf_conv_type=5),
)

#: Every op by name, in the order of their TF conv types.
OPS: Mapping[str, OpFacts] = MappingProxyType({facts.name: facts for facts in _ALL})
OP_NAMES = tuple(OPS)
#: TF conv type (``c`` token) -> op name.
TF_CONV_TYPES: Mapping[int, str] = MappingProxyType({facts.tf_conv_type: facts.name for facts in _ALL})


def op_facts(name: str) -> OpFacts:
    """The facts of op ``name``; an unknown name lists the known ones."""
    try:
        return OPS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {name!r}; known: {', '.join(OP_NAMES)}") from None
