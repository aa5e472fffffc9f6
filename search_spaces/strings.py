"""What the TF and timm string forms share: splitting into items, the stem/head items, token patterns.

A genotype string is items joined by ``,``: block strings, optionally preceded
by a stem item and followed by a head item (written only when they differ from
the default 32-wide scaled stem and 1280-wide scaled head):

* ``stem<N>`` or ``stem<N>_fixed`` -- stem width ``N``; ``_fixed``: the width
  multiplier does not scale it (timm's ``fix_stem``);
* ``head<N>``, ``head<N>_fixed`` or ``head<N>_up`` -- head width ``N``; ``_fixed``:
  never scaled (MnasNet, EfficientNet-Lite, FBNet); ``_up``: ``max(N, scaled)``
  (timm's MobileNetV2).

Neither TF's nor timm's decoder reads these items: both fail on them loudly
(TF: missing keys; timm: unknown block type), so no reference builder takes
such a string for another network.
"""

from __future__ import annotations

import re
from typing import Iterable

from .genes import DEFAULT_FRAME, HEAD_FILTERS, HEAD_SCALINGS, STEM_FILTERS, STEM_SCALINGS, Frame

BLOCK_SEPARATOR = ","
TOKEN = re.compile(r"^(se|noskip|skip|[a-z]+?)([0-9.].*|)$")
INT = re.compile(r"^[0-9]+$")
FLOAT = re.compile(r"^[0-9]*\.?[0-9]+$")
_STEM = re.compile(r"^stem([0-9]+)(?:_(" + "|".join(STEM_SCALINGS) + r"))?$")
_HEAD = re.compile(r"^head([0-9]+)(?:_(" + "|".join(HEAD_SCALINGS) + r"))?$")


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
    """The block items and the :class:`Frame` of ``items`` (stem item first, head item last, both optional).

    ``stem``: the stem width when the string has no stem item (default 32).
    """
    blocks = list(items)
    stem_width, stem_scaling = (STEM_FILTERS if stem is None else stem), "scaled"
    head_width, head_scaling = HEAD_FILTERS, "scaled"
    if blocks and blocks[0].startswith("stem"):
        item = blocks.pop(0)
        match = _STEM.match(item)
        if not match:
            raise ValueError(f"stem item {item!r} must be stem<N> or stem<N>_fixed, e.g. stem16 or stem32_fixed")
        if stem is not None and int(match.group(1)) != stem:
            raise ValueError(f"stem item {item!r} contradicts the stem width {stem} passed in; keep one")
        stem_width, stem_scaling = int(match.group(1)), match.group(2) or "scaled"
    if blocks and blocks[-1].startswith("head"):
        item = blocks.pop()
        match = _HEAD.match(item)
        if not match:
            raise ValueError(f"head item {item!r} must be head<N>, head<N>_fixed or head<N>_up, e.g. head1280_fixed")
        head_width, head_scaling = int(match.group(1)), match.group(2) or "scaled"
    for index, item in enumerate(blocks):
        if item.startswith(("stem", "head")):
            where = "first" if item.startswith("stem") else "last"
            raise ValueError(f"item {index + 1} ({item!r}): a {item[:4]} item must be the {where} item of the string")
    if not blocks:
        raise ValueError(f"a genotype needs at least one block, got only {', '.join(items)!r}")
    try:
        frame = Frame(stem_width, head_width, stem_scaling, head_scaling)
    except ValueError as err:
        raise ValueError(f"stem/head items: {err}") from None
    return blocks, frame


def frame_items(frame: Frame) -> tuple[list[str], list[str]]:
    """(leading, trailing) items that write ``frame``; both empty for the default frame."""
    lead, tail = [], []
    if frame.stem != DEFAULT_FRAME.stem or frame.stem_scaling != "scaled":
        lead.append(f"stem{frame.stem}" + ("" if frame.stem_scaling == "scaled" else f"_{frame.stem_scaling}"))
    if frame.head != DEFAULT_FRAME.head or frame.head_scaling != "scaled":
        tail.append(f"head{frame.head}" + ("" if frame.head_scaling == "scaled" else f"_{frame.head_scaling}"))
    return lead, tail


def fmt_ratio(value: float) -> str:
    return f"{value:.6g}"
