"""timm arch strings (``timm.models._efficientnet_builder._decode_block_str``) with timm's meaning.

``<type>_r<N>_k<K>_s<S>_e<E>_c<C>[_se<R>][_skip|_noskip]``; the types effnas
reads and writes:

* ``ds`` -- ``DepthwiseSeparableConv`` = op ``mbconv`` with expand 1;
* ``ir`` -- ``InvertedResidual``, which always has its 1x1 ``conv_pw``:
  op ``mbconv`` for ``e > 1``, op ``irpw`` for ``e1`` (FBNet-C's blocks);
* ``cn`` -- ``ConvBnAct`` = op ``conv`` without squeeze-excite (timm's
  ``cn`` has none); its residual only with ``skip``;
* ``er`` -- ``EdgeResidual`` = op ``fused`` (effnas ``c4``), exactly: a kxk
  expansion conv in -> in*e **with the stride**, BN, activation, squeeze-excite
  on the expanded features, a linear 1x1 projection + BN, the residual where
  stride 1 and in == out (also at ``e1``).  timm's ``fc<N>`` (``force_in_chs``,
  the hack for TF EdgeTPU's declared input width) has no effnas form and is
  refused.  TF's ``c1`` (op ``nodw``) at stride 1 with an expansion builds the
  same network as ``er_..._k3`` and exports so (it reads back as ``fused``:
  an equal ``network_key``); strided or expand-1 ``c1`` has no timm form.

Export checks everything timm would build differently and raises, naming
the block and the reason: strides other than 1 and 2 (timm asserts), channel
counts timm's ``round_channels`` would change (non-multiples of 8: output,
expanded and, unless ``fix_stem``, stem widths), squeeze widths timm rounds
otherwise (``round(mid * se / e)`` against TF's ``max(1, int(in * se))``),
and the blocks above that timm has no type for (op ``skip``: an absent layer).
Parsing runs the same checks, so a timm string effnas would build differently
is refused by name, never changed.
"""

from __future__ import annotations

from typing import Sequence

from .genes import BlockGene, Frame
from .strings import FLOAT, INT, TOKEN, fmt_ratio

TIMM_TYPES = ("ds", "dsa", "ir", "er", "cn", "tu", "uir", "mha", "mqa")
SUPPORTED = ("ds", "ir", "cn", "er")
_TOKENS = "r k s e c se skip noskip"
#: Frame activations as timm's ``get_act_layer`` names them (``EfficientNet(act_layer=...)``).
TIMM_ACT = {"silu": "silu", "relu": "relu", "relu6": "relu6", "hswish": "hard_swish"}


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """timm's ``make_divisible`` (layers/helpers.py): nearest multiple of ``divisor``, never 10% down."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


def timm_squeeze(in_filters: int, block: BlockGene) -> int:
    """Squeeze width timm gives ``block``'s SE: ``round(mid * (se / e))`` on the block's mid channels."""
    if block.op == "mbconv" and block.expand == 1:  # ds: SE on the input, ratio / 1.0
        return round(in_filters * (block.se / 1.0))
    mid = make_divisible(in_filters * float(block.expand))
    return round(mid * (block.se / float(block.expand)))


def format_block(block: BlockGene, in_filters: int, index: int) -> str:
    """The timm string of ``block`` (``index`` 1-based); ValueError where timm would build another block."""
    where = f"block {index}"
    if block.stride not in (1, 2):
        raise ValueError(f"{where}: timm's builder takes stride 1 or 2 (it asserts), got stride {block.stride}")
    if make_divisible(block.filters) != block.filters:
        raise ValueError(f"{where}: timm rounds output channels to multiples of 8 (round_channels): "
                         f"c{block.filters} would become c{make_divisible(block.filters)}")
    if block.op == "skip":
        raise ValueError(f"{where}: op skip (an absent layer, or a strided 1x1 conv + BN) has no timm block type")
    if block.op == "conv":
        if block.se > 0:
            raise ValueError(f"{where}: timm's cn (ConvBnAct) has no squeeze-excite; a regular conv with "
                             f"se{fmt_ratio(block.se)} cannot be exported")
        head, tail = "cn", (["skip"] if block.skip else [])
        return "_".join([head, f"r{block.layers}", f"k{block.kernel}", f"s{block.stride}", f"c{block.filters}",
                         *tail])
    mid = in_filters * block.expand
    if block.op == "nodw":
        if block.stride != 1 or block.expand == 1:
            why = ("TF's c1 strides its 1x1 projection, timm's er its 3x3 expansion conv" if block.stride != 1
                   else "TF's c1 at e1 is a lone 1x1 conv without activation, which no timm block builds")
            raise ValueError(f"{where}: TF's c1 block (s{block.stride}, e{block.expand}) has no timm form: {why}")
        head, kernel = "er", 3
    elif block.op == "fused":
        head, kernel = "er", block.kernel
    else:
        head, kernel = ("ds" if block.op == "mbconv" and block.expand == 1 else "ir"), block.kernel
    if head != "ds" and make_divisible(mid) != mid:
        raise ValueError(f"{where}: timm rounds the expanded width {in_filters}*{block.expand}={mid} to "
                         f"{make_divisible(mid)} (make_divisible)")
    parts = [head, f"r{block.layers}", f"k{kernel}", f"s{block.stride}", f"e{block.expand}", f"c{block.filters}"]
    if block.se > 0:
        ours, theirs = max(1, int(in_filters * block.se)), timm_squeeze(in_filters, block)
        if ours != theirs:
            raise ValueError(f"{where}: squeeze-excite width differs: TF's max(1, int({in_filters}*{block.se:g}))"
                             f"={ours}, timm's round(mid*se/e)={theirs}")
        parts.append(f"se{fmt_ratio(block.se)}")
    if not block.skip:
        parts.append("noskip")
    return "_".join(parts)


def check_frame(frame: Frame) -> None:
    if frame.stem_scaling == "scaled" and make_divisible(frame.stem) != frame.stem:
        raise ValueError(f"stem: timm rounds a scaled stem of {frame.stem} to {make_divisible(frame.stem)}; "
                         f"use a multiple of 8 or a fixed stem (stem{frame.stem}_fixed, timm's fix_stem)")


def timm_kwargs(frame: Frame) -> dict[str, object]:
    """timm ``EfficientNet`` keyword arguments for ``frame`` at width 1.0, the activation always (timm's
    ``EfficientNet`` class defaults to ReLU; its ``_gen_efficientnet`` passes swish)."""
    check_frame(frame)
    if frame.se_activation is not None:
        raise ValueError(f"timm's SqueezeExcite uses its block's activation; a frame with activation "
                         f"{frame.activation} and SE activation {frame.se_activation} has no timm_kwargs form")
    if frame.stem_stride != 2:
        raise ValueError(f"timm's EfficientNet has a stem of stride 2; this frame's stem has stride "
                         f"{frame.stem_stride}")
    return {"stem_size": frame.stem, "fix_stem": frame.stem_scaling == "fixed", "num_features": frame.head,
            "act_layer": TIMM_ACT[frame.activation]}


def parse_block(item: str, index: int) -> BlockGene:
    """One timm block string; ``index`` (0-based) names it in errors."""
    where = f"block {index + 1} ({item!r})"
    tokens = item.split("_")
    head = tokens[0]
    if head not in SUPPORTED:
        known = "a timm block type effnas cannot express" if head in TIMM_TYPES else "not a timm block type"
        raise ValueError(f"{where}: block type {head!r} is {known}; allowed: {', '.join(SUPPORTED)}")
    seen: dict[str, object] = {}
    for token in tokens[1:]:
        match = TOKEN.match(token)
        key, raw = (match.group(1), match.group(2)) if match else ("", "")
        if key in seen:
            raise ValueError(f"{where}: token {token!r} repeats key {key!r}")
        if key in ("noskip", "skip") and not raw:
            seen[key] = True
        elif key == "se":
            if not FLOAT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs a ratio, e.g. se0.25")
            seen["se"] = float(raw)
        elif key == "fc":
            raise ValueError(f"{where}: token {token!r} (timm's force_in_chs, for TF EdgeTPU's declared input "
                             "width) cannot be expressed: effnas expands a block from its real input channels")
        elif key in ("r", "k", "s", "c"):
            if not INT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs an integer value"
                                 + ("; mixed kernels (k3.5) cannot be expressed" if key == "k" else ""))
            seen[key] = int(raw)
        elif key == "e":
            if not FLOAT.match(raw) or not float(raw).is_integer() or float(raw) < 1:
                raise ValueError(f"{where}: token {token!r}: the expansion must be a positive integer")
            seen[key] = int(float(raw))
        else:
            raise ValueError(f"{where}: unknown or inexpressible token {token!r}; allowed: {_TOKENS}")
    missing = [k for k in ("r", "k", "s", "c") + (("e",) if head in ("ir", "er") else ()) if k not in seen]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}; a timm {head} block needs r k s "
                         + ("e " if head in ("ir", "er") else "") + "c")
    if "skip" in seen and "noskip" in seen:
        raise ValueError(f"{where}: 'skip' and 'noskip' contradict each other; keep one")
    expand, se = int(seen.get("e", 1)), float(seen.get("se", 0.0))  # type: ignore[call-overload]
    if head == "ds" and expand != 1:
        raise ValueError(f"{where}: a 'ds' block has expand 1, got e{expand}; use 'ir' for e>1")
    if head == "cn":
        if expand != 1:
            raise ValueError(f"{where}: a 'cn' block has no expansion, got e{expand}")
        if se > 0:
            raise ValueError(f"{where}: timm's cn (ConvBnAct) ignores se; drop the se token")
        op, skip = "conv", bool(seen.get("skip", False))
    elif head == "er":
        op, skip = "fused", "noskip" not in seen
    else:
        op, skip = ("irpw" if head == "ir" and expand == 1 else "mbconv"), "noskip" not in seen
    try:
        return BlockGene(op=op, kernel=seen["k"], stride=seen["s"], expand=expand, se=se,  # type: ignore[arg-type]
                         skip=skip, filters=seen["c"], layers=seen["r"])  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def format_blocks(blocks: Sequence[BlockGene], frame: Frame) -> list[str]:
    check_frame(frame)
    out, in_filters = [], frame.stem
    for index, block in enumerate(blocks, start=1):
        out.append(format_block(block, in_filters, index))
        in_filters = block.filters
    return out
