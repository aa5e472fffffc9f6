"""The genotype: a searched architecture as a frozen, hashable value.

A :class:`Genotype` is a tuple of :class:`BlockGene`, one per block of the
MnasNet factorized hierarchical space (Tan et al. 2019, arXiv:1807.11626,
section 4.1).  Each gene states a block's conv op, kernel, expansion ratio,
squeeze-excite ratio, skip op, output filters, number of layers and stride.

String forms
------------
* ``to_string()`` / ``from_string()`` use the block-string grammar of
  tensorflow/tpu's ``efficientnet_builder.BlockDecoder``:
  ``r1_k3_s11_e1_i32_o16_se0.25`` (keys ``r`` repeats, ``k`` kernel, ``s``
  stride twice, ``e`` expand ratio, ``i``/``o`` in/out filters, ``se`` ratio,
  flag ``noskip``).  The MnasNet "regular conv" op is written with ``c1``
  (conv type 1 = full kxk convolution; ``c0``, the depthwise MBConv, is the
  default and is not written).  **Blocks are joined with a comma**; spaces
  around commas are allowed.  Parsing is strict: unknown or repeated tokens,
  missing keys, bad values and channel chains that do not connect raise
  ``ValueError`` naming the token and the allowed values.
* ``to_timm()`` / ``from_timm()`` emit and read timm arch-def strings
  (``ds_r1_k3_s1_e1_c16_se0.25``, ``ir_r2_k3_s2_e6_c24_se0.25``,
  ``cn_r1_k3_s1_c32``), blocks joined by commas.
* ``to_dict()`` / ``from_dict()``: a flat ``{"b1_kernel": 3, ...}`` dict of
  scalars, suitable as a Ray Tune config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Iterable

OPS = ("mbconv", "conv")
STEM_FILTERS = 32
BLOCK_SEPARATOR = ","


@dataclass(frozen=True)
class BlockGene:
    """One block of the factorized space (a stage of identical layers)."""

    op: str = "mbconv"
    kernel: int = 3
    stride: int = 1
    expand: int = 1
    se: float = 0.0
    skip: bool = True
    filters: int = 16
    layers: int = 1

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"block op must be one of {OPS}, got {self.op!r}")
        for name in ("kernel", "stride", "expand", "filters", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"block {name} must be a positive integer, got {value!r}")
        if self.kernel % 2 == 0:
            raise ValueError(f"block kernel must be odd, got {self.kernel}")
        if not isinstance(self.se, (int, float)) or isinstance(self.se, bool) or not 0.0 <= self.se <= 1.0:
            raise ValueError(f"block se must be a ratio in [0, 1], got {self.se!r}")
        if not isinstance(self.skip, bool):
            raise ValueError(f"block skip must be true or false, got {self.skip!r}")
        if self.op == "conv" and self.expand != 1:
            raise ValueError(f"a regular conv block has no expansion: expand must be 1, got {self.expand}")
        object.__setattr__(self, "se", float(self.se))

    def to_string(self, in_filters: int) -> str:
        parts = [f"r{self.layers}", f"k{self.kernel}", f"s{self.stride}{self.stride}",
                 f"e{self.expand}", f"i{in_filters}", f"o{self.filters}"]
        if self.se > 0:
            parts.append(f"se{_fmt_ratio(self.se)}")
        if self.op == "conv":
            parts.append("c1")
        if not self.skip:
            parts.append("noskip")
        return "_".join(parts)

    def to_timm(self) -> str:
        if self.op == "conv":
            head = "cn"
        elif self.expand == 1:
            head = "ds"
        else:
            head = "ir"
        parts = [head, f"r{self.layers}", f"k{self.kernel}", f"s{self.stride}", f"e{self.expand}",
                 f"c{self.filters}"]
        if self.se > 0:
            parts.append(f"se{_fmt_ratio(self.se)}")
        # timm's ConvBnAct ("cn") has no skip unless told; ds/ir have one unless told.
        if head == "cn" and self.skip:
            parts.append("skip")
        if head != "cn" and not self.skip:
            parts.append("noskip")
        return "_".join(parts)


def _fmt_ratio(value: float) -> str:
    text = f"{value:.6g}"
    return text


@dataclass(frozen=True)
class Genotype:
    """A whole architecture: the blocks between the stem and the head."""

    blocks: tuple[BlockGene, ...]

    def __post_init__(self) -> None:
        blocks = tuple(self.blocks)
        if not blocks:
            raise ValueError("a genotype needs at least one block")
        for block in blocks:
            if not isinstance(block, BlockGene):
                raise TypeError(f"genotype blocks must be BlockGene, got {type(block).__name__}")
        object.__setattr__(self, "blocks", blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def in_filters(self, index: int, stem: int = STEM_FILTERS) -> int:
        return stem if index == 0 else self.blocks[index - 1].filters

    # -- TF block strings -------------------------------------------------
    def to_string(self, stem: int = STEM_FILTERS) -> str:
        return BLOCK_SEPARATOR.join(b.to_string(self.in_filters(i, stem)) for i, b in enumerate(self.blocks))

    def to_strings(self, stem: int = STEM_FILTERS) -> list[str]:
        return [b.to_string(self.in_filters(i, stem)) for i, b in enumerate(self.blocks)]

    @classmethod
    def from_string(cls, text: str | Iterable[str], stem: int = STEM_FILTERS) -> "Genotype":
        items = _split_blocks(text)
        blocks = []
        expected_in = stem
        for index, item in enumerate(items):
            block, in_filters = _parse_tf_block(item, index)
            if in_filters != expected_in:
                raise ValueError(
                    f"block {index + 1} ({item!r}): input filters i{in_filters} must equal the previous "
                    f"block's output ({'stem' if index == 0 else 'o'}{expected_in}); fix 'i' to i{expected_in}")
            blocks.append(block)
            expected_in = block.filters
        return cls(tuple(blocks))

    # -- timm arch strings ------------------------------------------------
    def to_timm(self) -> str:
        return BLOCK_SEPARATOR.join(b.to_timm() for b in self.blocks)

    def to_timm_arch_def(self) -> list[list[str]]:
        """The nested list timm's ``decode_arch_def`` takes (one stage a list)."""
        return [[b.to_timm()] for b in self.blocks]

    @classmethod
    def from_timm(cls, text: str | Iterable[str]) -> "Genotype":
        items = _split_blocks(text)
        return cls(tuple(_parse_timm_block(item, index) for index, item in enumerate(items)))

    # -- flat dict (Ray configs) -----------------------------------------
    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"num_blocks": len(self.blocks)}
        for i, block in enumerate(self.blocks, start=1):
            for f in fields(BlockGene):
                out[f"b{i}_{f.name}"] = getattr(block, f.name)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Genotype":
        data = dict(data)
        num = data.pop("num_blocks", None)
        if isinstance(num, bool) or not isinstance(num, int) or num < 1:
            raise ValueError(f"genotype dict needs 'num_blocks' as a positive integer, got {num!r}")
        names = [f.name for f in fields(BlockGene)]
        blocks = []
        for i in range(1, num + 1):
            kwargs = {}
            for name in names:
                key = f"b{i}_{name}"
                if key not in data:
                    raise ValueError(f"genotype dict is missing key {key!r}")
                kwargs[name] = data.pop(key)
            blocks.append(BlockGene(**kwargs))
        if data:
            raise ValueError(f"genotype dict has unknown keys {sorted(data)}; allowed: num_blocks, b<i>_<{'|'.join(names)}>")
        return cls(tuple(blocks))


def _split_blocks(text: str | Iterable[str]) -> list[str]:
    if isinstance(text, str):
        items = [part.strip() for part in text.split(BLOCK_SEPARATOR)]
    else:
        items = [str(part).strip() for part in text]
    if not items or any(not item for item in items):
        raise ValueError(f"a genotype string is block strings joined by {BLOCK_SEPARATOR!r}; got an empty block in {text!r}")
    return items


_TF_INT_KEYS = {"r": "layers", "k": "kernel", "e": "expand", "i": "in", "o": "filters", "c": "conv_type"}
_TOKEN = re.compile(r"^(se|noskip|[a-z])(.*)$")
_INT = re.compile(r"^[0-9]+$")
_FLOAT = re.compile(r"^[0-9]*\.?[0-9]+$")


def _parse_tf_block(item: str, index: int) -> tuple[BlockGene, int]:
    where = f"block {index + 1} ({item!r})"
    seen: dict[str, object] = {}
    for token in item.split("_"):
        match = _TOKEN.match(token)
        key = match.group(1) if match else ""
        raw = match.group(2) if match else ""
        if key in seen or (key == "noskip" and "noskip" in seen):
            raise ValueError(f"{where}: token {token!r} repeats key {key!r}")
        if key == "noskip":
            if raw:
                raise ValueError(f"{where}: unknown token {token!r}; allowed keys: r k s e i o se c noskip")
            seen["noskip"] = True
        elif key == "se":
            if not _FLOAT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs a ratio, e.g. se0.25")
            seen["se"] = float(raw)
        elif key == "s":
            if not re.fullmatch(r"[0-9][0-9]", raw) or raw[0] != raw[1] or raw[0] == "0":
                raise ValueError(f"{where}: token {token!r} must be s11 or s22 (equal strides, e.g. s22)")
            seen["s"] = int(raw[0])
        elif key in _TF_INT_KEYS:
            if not _INT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs an integer value")
            seen[key] = int(raw)
        else:
            raise ValueError(f"{where}: unknown token {token!r}; allowed keys: r k s e i o se c noskip")
    missing = [k for k in ("r", "k", "s", "e", "i", "o") if k not in seen]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}; a block string needs r k s e i o")
    conv_type = seen.get("c", 0)
    if conv_type not in (0, 1):
        raise ValueError(f"{where}: c{conv_type} is not allowed; c0 = depthwise MBConv (default), c1 = regular conv")
    try:
        gene = BlockGene(op="conv" if conv_type == 1 else "mbconv", kernel=seen["k"], stride=seen["s"],
                         expand=seen["e"], se=seen.get("se", 0.0), skip="noskip" not in seen,
                         filters=seen["o"], layers=seen["r"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return gene, int(seen["i"])  # type: ignore[arg-type]


_TIMM_HEADS = {"ds": "mbconv", "ir": "mbconv", "cn": "conv"}


def _parse_timm_block(item: str, index: int) -> BlockGene:
    where = f"block {index + 1} ({item!r})"
    tokens = item.split("_")
    head = tokens[0]
    if head not in _TIMM_HEADS:
        raise ValueError(f"{where}: block type {head!r} cannot be expressed; allowed: ds, ir, cn")
    seen: dict[str, object] = {}
    for token in tokens[1:]:
        if token in ("noskip", "skip"):
            key, raw = token, ""
        else:
            match = _TOKEN.match(token)
            key, raw = (match.group(1), match.group(2)) if match else ("", "")
        if key in seen:
            raise ValueError(f"{where}: token {token!r} repeats key {key!r}")
        if key in ("noskip", "skip"):
            seen[key] = True
        elif key == "se":
            if not _FLOAT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs a ratio, e.g. se0.25")
            seen["se"] = float(raw)
        elif key in ("r", "k", "s", "e", "c"):
            if not _INT.match(raw):
                raise ValueError(f"{where}: token {token!r} needs an integer value")
            seen[key] = int(raw)
        else:
            raise ValueError(f"{where}: unknown token {token!r}; allowed: r k s e c se skip noskip")
    missing = [k for k in ("r", "k", "s", "c") if k not in seen]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}; a timm block needs r k s c")
    if "skip" in seen and "noskip" in seen:
        raise ValueError(f"{where}: 'skip' and 'noskip' contradict each other; keep one")
    op = _TIMM_HEADS[head]
    expand = seen.get("e", 1)
    if head == "ds" and expand != 1:
        raise ValueError(f"{where}: a 'ds' block has expand 1, got e{expand}; use 'ir' for e>1")
    if head == "cn" and expand != 1:
        raise ValueError(f"{where}: a 'cn' block has no expansion, got e{expand}")
    skip = bool(seen.get("skip", False)) if head == "cn" else "noskip" not in seen
    try:
        return BlockGene(op=op, kernel=seen["k"], stride=seen["s"], expand=expand,
                         se=seen.get("se", 0.0), skip=skip, filters=seen["c"], layers=seen["r"])
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
