"""TF block strings (tensorflow/tpu ``efficientnet_builder.BlockDecoder``) with TF's meaning of every token.

``r1_k3_s11_e1_i32_o16_se0.25``: ``r`` layers, ``k`` kernel, ``s`` the two
strides (equal digits), ``e`` expansion ratio, ``i``/``o`` input/output
filters, ``se`` squeeze-excite ratio (of the block's input filters), flag
``noskip``, and ``c`` the conv type, which selects the block class as in TF's
``efficientnet_model.Model._get_conv_block``:

* ``c0`` (default, not written): ``MBConvBlock`` -> op ``mbconv``;
* ``c1``: ``MBConvBlockWithoutDepthwise`` -> op ``nodw``;
* ``c2``: effnas extension, MnasNet's regular kxk conv -> op ``conv``;
* ``c3``: effnas extension, timm's expand-1 InvertedResidual -> op ``irpw``;
* ``c4``: effnas extension, fused MBConv as timm's ``EdgeResidual`` -> op ``fused``;
* ``c5``: effnas extension, no layer (identity, or a strided 1x1 conv + BN) -> op ``skip``.

TF's builder maps only conv types 0 and 1 and raises ``KeyError`` on ``c2`` ..
``c5``, so an effnas string never builds silently as another network there;
:func:`check_tf` (``Genotype.to_tf()``) refuses them outright.

Grammar 1 (effnas before this grammar) wrote MnasNet's regular conv as ``c1``;
:func:`convert_legacy` rewrites such strings (``c1`` -> ``c2``).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

from .genes import DEFAULT_FRAME, BlockGene, Frame
from .ops import OPS, TF_CONV_TYPES
from .strings import FLOAT, INT, fmt_ratio

#: Version of the genotype string grammar, written next to genotypes in run dirs.
GRAMMAR_VERSION = 2
CONV_TYPES = dict(TF_CONV_TYPES)
_CONV_TYPE_OF = {op: c for c, op in CONV_TYPES.items()}
_INT_KEYS = ("r", "k", "e", "i", "o", "c")
_TOKEN = re.compile(r"^(se|noskip|[a-z])(.*)$")
_KEYS = "r k s e i o se c noskip"
_ALLOWED_C = "c0 = MBConv (default), c1 = TF's MBConvBlockWithoutDepthwise, c2 = regular conv, " \
             "c3 = expand-1 inverted residual with its 1x1 conv, c4 = fused MBConv (timm's er), c5 = no layer (skip)"
_NO_TF_CLASS = {"conv": "MnasNet's regular conv", "irpw": "an expand-1 MBConv with a 1x1 expansion",
                "fused": "a fused MBConv with a strided kxk expansion (timm's EdgeResidual)",
                "skip": "an absent layer (skip)"}


def format_block(block: BlockGene, in_filters: int) -> str:
    parts = [f"r{block.layers}", f"k{block.kernel}", f"s{block.stride}{block.stride}", f"e{block.expand}",
             f"i{in_filters}", f"o{block.filters}"]
    if block.se > 0:
        parts.append(f"se{fmt_ratio(block.se)}")
    if block.op != "mbconv":
        parts.append(f"c{_CONV_TYPE_OF[block.op]}")
    if not block.skip:
        parts.append("noskip")
    return "_".join(parts)


def check_tf(blocks: Sequence[BlockGene], frame: Frame) -> None:
    """Raise unless TF's ``efficientnet_model`` builds exactly this network from its block strings."""
    for index, block in enumerate(blocks, start=1):
        if not OPS[block.op].tf_native:
            raise ValueError(f"block {index}: {_NO_TF_CLASS[block.op]} (effnas c{_CONV_TYPE_OF[block.op]}) has no TF "
                             "block class; TF's efficientnet_model knows c0 (MBConv) and c1 "
                             "(MBConvBlockWithoutDepthwise)")
    if frame.activation != DEFAULT_FRAME.activation or frame.se_activation is not None:
        raise ValueError(f"TF's efficientnet_builder builds swish (SiLU) networks; this genotype uses "
                         f"{frame.activation}" + (f" (SE {frame.se_activation})" if frame.se_activation else "")
                         + ", which its block strings cannot carry")
    if (frame.stem, frame.head, frame.stem_scaling, frame.head_scaling, frame.stem_stride) != (
            DEFAULT_FRAME.stem, DEFAULT_FRAME.head, "scaled", "scaled", DEFAULT_FRAME.stem_stride):
        raise ValueError(f"TF's efficientnet_model has a 32-filter stem of stride 2 and a 1280-filter head, both "
                         f"scaled; this genotype has stem {frame.stem} ({frame.stem_scaling}, stride "
                         f"{frame.stem_stride}), head {frame.head} ({frame.head_scaling})")


def parse_block(item: str, index: int) -> tuple[BlockGene, int]:
    """(block, input filters) of one TF block string; ``index`` (0-based) names it in errors."""
    where = f"block {index + 1} ({item!r})"
    seen: dict[str, object] = {}
    for token in item.split("_"):
        match = _TOKEN.match(token)
        key, raw = (match.group(1), match.group(2)) if match else ("", "")
        if key in seen:
            raise ValueError(f"{where}: token {token!r} repeats key {key!r}")
        if key == "noskip" and not raw:
            seen["noskip"] = True
        elif key == "se":
            if not FLOAT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs a ratio, e.g. se0.25")
            seen["se"] = float(raw)
        elif key == "s":
            if not re.fullmatch(r"[0-9][0-9]", raw) or raw[0] != raw[1] or raw[0] == "0":
                raise ValueError(f"{where}: token {token!r} must be two equal stride digits such as s11 or s22")
            seen["s"] = int(raw[0])
        elif key in _INT_KEYS:
            if not INT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs an integer value")
            seen[key] = int(raw)
        else:
            raise ValueError(f"{where}: unknown token {token!r}; allowed keys: {_KEYS}")
    missing = [k for k in ("r", "k", "s", "e", "i", "o") if k not in seen]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}; a block string needs r k s e i o")
    conv_type = seen.get("c", 0)
    if conv_type not in CONV_TYPES:
        raise ValueError(f"{where}: c{conv_type} is not allowed; {_ALLOWED_C}")
    try:
        gene = BlockGene(op=CONV_TYPES[conv_type], kernel=seen["k"], stride=seen["s"],  # type: ignore[arg-type]
                         expand=seen["e"], se=seen.get("se", 0.0), skip="noskip" not in seen,  # type: ignore
                         filters=seen["o"], layers=seen["r"])  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return gene, int(seen["i"])  # type: ignore[call-overload]


def parse_blocks(items: list[str], stem: int) -> tuple[BlockGene, ...]:
    """Blocks of TF block strings whose channels chain from a ``stem``-wide stem."""
    blocks = []
    expected_in = stem
    for index, item in enumerate(items):
        block, in_filters = parse_block(item, index)
        if in_filters != expected_in:
            raise ValueError(
                f"block {index + 1} ({item!r}): input filters i{in_filters} must equal the previous "
                f"block's output ({'stem' if index == 0 else 'o'}{expected_in}); fix 'i' to i{expected_in}"
                + (f" or give the stem as a first item stem{in_filters}" if index == 0 else ""))
        blocks.append(block)
        expected_in = block.filters
    return tuple(blocks)


def convert_legacy(text: str | Iterable[str]) -> tuple[str, int]:
    """A grammar-1 genotype string in this grammar, and how many blocks were rewritten (``c1`` -> ``c2``)."""
    items = [text] if isinstance(text, str) else list(text)
    out, changed = [], 0
    for part in items:
        blocks = []
        for block in str(part).split(","):
            tokens = block.split("_")
            if "c1" in (t.strip() for t in tokens):
                tokens = ["c2" if t.strip() == "c1" else t for t in tokens]
                changed += 1
            blocks.append("_".join(tokens))
        out.append(",".join(blocks))
    return ",".join(out), changed
