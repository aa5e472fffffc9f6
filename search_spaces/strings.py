"""What the TF and timm string forms share: splitting into items, the stem/head items, token patterns.

A genotype string is items joined by ``,``: block strings, optionally preceded
by a stem item and followed by a head item and an activation item (each written
only when it differs from the default: a 32-wide scaled stem of stride 2, a
1280-wide scaled head, SiLU everywhere):

* ``stem<N>[_fixed][_s<S>]`` -- stem width ``N``; ``_fixed``: the width
  multiplier does not scale it (timm's ``fix_stem``); ``_s1``: stride 1 (the
  default 2 is not written);
* ``head<N>``, ``head<N>_fixed`` or ``head<N>_up`` -- head width ``N``; ``_fixed``:
  never scaled (MnasNet, EfficientNet-Lite, FBNet); ``_up``: ``max(N, scaled)``
  (timm's MobileNetV2);
* ``act_<A>[_se_<B>]`` -- the network's activation ``A`` (relu, relu6, silu,
  hswish) and, when it differs, the one inside squeeze-excite ``B``.

Neither TF's nor timm's decoder reads these items: both fail on them loudly
(TF: missing keys; timm: unknown block type), so no reference builder takes
such a string for another network.
"""

from __future__ import annotations

import re
from typing import Iterable

from .genes import ACTIVATIONS, DEFAULT_FRAME, HEAD_FILTERS, HEAD_SCALINGS, STEM_FILTERS, STEM_SCALINGS, Frame

BLOCK_SEPARATOR = ","
TOKEN = re.compile(r"^(se|noskip|skip|[a-z]+?)([0-9.].*|)$")
INT = re.compile(r"^[0-9]+$")
FLOAT = re.compile(r"^[0-9]*\.?[0-9]+$")
_STEM = re.compile(r"^stem([0-9]+)(?:_(" + "|".join(STEM_SCALINGS) + r"))?(?:_s([0-9]+))?$")
_HEAD = re.compile(r"^head([0-9]+)(?:_(" + "|".join(HEAD_SCALINGS) + r"))?$")
_ACT = re.compile(r"^act_([a-z0-9]+)(?:_se_([a-z0-9]+))?$")
_ACT_FORM = f"act_<name> or act_<name>_se_<name> with names {', '.join(ACTIVATIONS)}, e.g. act_relu"


def split_items(text: str | Iterable) -> list[str]:
    """Items of a genotype string, or of a list (a nested list, timm's arch_def, is flattened)."""
    if isinstance(text, str):
        items = [part.strip() for part in text.split(BLOCK_SEPARATOR)]
    else:
        items = []
        for part in text:
            if isinstance(part, (list, tuple)):
                items.extend(str(p).strip() for p in part)
            else:
                items.append(str(part).strip())
    if not items or any(not item for item in items):
        raise ValueError(f"a genotype string is block strings joined by {BLOCK_SEPARATOR!r}; "
                         f"got an empty block in {text!r}")
    return items


def split_frame(items: list[str], stem: int | None = None) -> tuple[list[str], Frame]:
    """The block items and the :class:`Frame` of ``items`` (stem item first; head, then activation item
    last; all optional).  ``stem``: the stem width when the string has no stem item (default 32).
    """
    blocks = list(items)
    fields: dict[str, object] = {"stem": STEM_FILTERS if stem is None else stem}
    if blocks and blocks[0].startswith("stem"):
        item = blocks.pop(0)
        match = _STEM.match(item)
        if not match:
            raise ValueError(f"stem item {item!r} must be stem<N>[_fixed][_s<S>], e.g. stem16, stem32_fixed or "
                             "stem32_s1")
        if stem is not None and int(match.group(1)) != stem:
            raise ValueError(f"stem item {item!r} contradicts the stem width {stem} passed in; keep one")
        fields.update(stem=int(match.group(1)), stem_scaling=match.group(2) or "scaled")
        if match.group(3) is not None:
            fields["stem_stride"] = int(match.group(3))
    if blocks and blocks[-1].startswith("act"):
        item = blocks.pop()
        match = _ACT.match(item)
        if not match:
            raise ValueError(f"activation item {item!r} must be {_ACT_FORM}")
        fields.update(activation=match.group(1), se_activation=match.group(2))
    if blocks and blocks[-1].startswith("head"):
        item = blocks.pop()
        match = _HEAD.match(item)
        if not match:
            raise ValueError(f"head item {item!r} must be head<N>, head<N>_fixed or head<N>_up, e.g. head1280_fixed")
        fields.update(head=int(match.group(1)), head_scaling=match.group(2) or "scaled")
    for index, item in enumerate(blocks):
        if item.startswith(("stem", "head", "act")):
            kind = item[:4] if item.startswith(("stem", "head")) else "activation"
            where = "first item" if kind == "stem" else "last item" + (" (only an activation item may follow it)"
                                                                        if kind == "head" else "")
            raise ValueError(f"item {index + 1} ({item!r}): a {kind} item must be the {where} of the string")
    if not blocks:
        raise ValueError(f"a genotype needs at least one block, got only {', '.join(items)!r}")
    try:
        frame = Frame(**fields)  # type: ignore[arg-type]
    except ValueError as err:
        raise ValueError(f"stem/head/activation items: {err}") from None
    return blocks, frame


def frame_items(frame: Frame) -> tuple[list[str], list[str]]:
    """(leading, trailing) items that write ``frame``; both empty for the default frame."""
    lead, tail = [], []
    d = DEFAULT_FRAME
    if frame.stem != d.stem or frame.stem_scaling != d.stem_scaling or frame.stem_stride != d.stem_stride:
        lead.append(f"stem{frame.stem}" + ("" if frame.stem_scaling == "scaled" else f"_{frame.stem_scaling}")
                    + ("" if frame.stem_stride == d.stem_stride else f"_s{frame.stem_stride}"))
    if frame.head != d.head or frame.head_scaling != d.head_scaling:
        tail.append(f"head{frame.head}" + ("" if frame.head_scaling == "scaled" else f"_{frame.head_scaling}"))
    if frame.activation != d.activation or frame.se_activation is not None:
        tail.append(f"act_{frame.activation}" + ("" if frame.se_activation is None else f"_se_{frame.se_activation}"))
    return lead, tail


def fmt_ratio(value: float) -> str:
    return f"{value:.6g}"
