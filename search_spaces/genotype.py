"""The genotype: a searched architecture as a frozen, hashable value.

A :class:`Genotype` is a tuple of :class:`~search_spaces.genes.BlockGene`, one
per block of the MnasNet factorized hierarchical space (Tan et al. 2019,
arXiv:1807.11626, section 4.1), and a :class:`~search_spaces.genes.Frame`
(stem and head; the default is EfficientNet's 32-filter stem and 1280-filter
head, both scaled with the width).

String forms (blocks joined by ``,``; the README's "Genotype strings" section
lists every token):

* ``to_string()`` / ``from_string()``: TF block strings with TF's meaning of
  every token (``search_spaces.tf_grammar``), plus two effnas conv types
  (``c2`` regular conv, ``c3`` expand-1 inverted residual) that TF's builder
  refuses; ``to_tf()`` exports for TF and raises where TF would differ.
* ``to_timm()`` / ``from_timm()``: timm arch strings with timm's meaning
  (``search_spaces.timm_grammar``); export and parsing raise, naming the block
  and the reason, wherever timm would build a different network.
* stem/head items ``stem<N>[_fixed]`` first and ``head<N>[_fixed|_up]`` last,
  in both forms, only when the frame is not the default
  (``search_spaces.strings``).
* ``to_dict()`` / ``from_dict()``: a flat ``{"b1_kernel": 3, ...}`` dict of
  scalars, suitable as a Ray Tune config.

Parsing is strict: unknown or repeated tokens, missing keys, bad values and
channel chains that do not connect raise ``ValueError`` naming the token and
the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Iterable

from . import tf_grammar, timm_grammar
from .genes import DEFAULT_FRAME, OPS, STEM_FILTERS, BlockGene, Frame
from .strings import BLOCK_SEPARATOR, frame_items, split_frame, split_items

__all__ = ["BLOCK_SEPARATOR", "OPS", "STEM_FILTERS", "BlockGene", "Frame", "Genotype"]

#: Flat-dict keys of the frame (every Frame field, so the dict form is lossless).
_FRAME_KEYS = {f.name: f.name for f in fields(Frame)}


@dataclass(frozen=True)
class Genotype:
    """A whole architecture: the blocks between the stem and the head, and the frame (stem, head)."""

    blocks: tuple[BlockGene, ...]
    frame: Frame = DEFAULT_FRAME

    def __post_init__(self) -> None:
        blocks = tuple(self.blocks)
        if not blocks:
            raise ValueError("a genotype needs at least one block")
        for block in blocks:
            if not isinstance(block, BlockGene):
                raise TypeError(f"genotype blocks must be BlockGene, got {type(block).__name__}")
        if not isinstance(self.frame, Frame):
            raise TypeError(f"genotype frame must be a Frame, got {type(self.frame).__name__}")
        object.__setattr__(self, "blocks", blocks)

    def __hash__(self) -> int:  # kept after the first call: sets and dicts of genotypes hash them again and again
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.blocks, self.frame))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict:  # string hashes differ between processes: never carry the cached one
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)

    def __len__(self) -> int:
        return len(self.blocks)

    def in_filters(self, index: int, stem: int | None = None) -> int:
        return (self.frame.stem if stem is None else stem) if index == 0 else self.blocks[index - 1].filters

    def with_frame(self, **changes) -> "Genotype":
        """This genotype with some frame fields (stem, head, stem_scaling, head_scaling) replaced."""
        return replace(self, frame=replace(self.frame, **changes)) if changes else self

    def _framed(self, stem: int | None) -> "Genotype":
        return self if stem is None or stem == self.frame.stem else self.with_frame(stem=stem)

    # -- TF block strings -------------------------------------------------
    def to_string(self, stem: int | None = None) -> str:
        """The TF block string (``stem`` overrides the frame's stem width)."""
        return BLOCK_SEPARATOR.join(self._framed(stem)._items())

    def to_strings(self, stem: int | None = None) -> list[str]:
        """The block strings alone, one a block (the stem/head items are not among them)."""
        g = self._framed(stem)
        return [tf_grammar.format_block(b, g.in_filters(i)) for i, b in enumerate(g.blocks)]

    def _items(self) -> list[str]:
        lead, tail = frame_items(self.frame)
        return lead + self.to_strings() + tail

    def to_tf(self) -> list[str]:
        """The block strings for TF's ``efficientnet_builder``; ValueError where TF would build another network."""
        tf_grammar.check_tf(self.blocks, self.frame)
        return self.to_strings()

    @classmethod
    def from_string(cls, text: str | Iterable[str], stem: int | None = None) -> "Genotype":
        """Parse a TF block string (or a list of block strings); ``stem``: the stem width if no stem item."""
        items, frame = split_frame(split_items(text), stem)
        return cls(tf_grammar.parse_blocks(items, frame.stem), frame)

    # -- timm arch strings ------------------------------------------------
    def to_timm(self) -> str:
        """The timm arch string; ValueError naming the block where timm would build another network."""
        lead, tail = frame_items(self.frame)
        return BLOCK_SEPARATOR.join(lead + timm_grammar.format_blocks(self.blocks, self.frame) + tail)

    def to_timm_arch_def(self) -> list[list[str]]:
        """The nested list timm's ``decode_arch_def`` takes (one stage a list); the frame is in :meth:`timm_kwargs`."""
        return [[b] for b in timm_grammar.format_blocks(self.blocks, self.frame)]

    def timm_kwargs(self) -> dict[str, object]:
        """``stem_size``, ``fix_stem``, ``num_features`` for timm's ``EfficientNet`` (width 1.0)."""
        return timm_grammar.timm_kwargs(self.frame)

    @classmethod
    def from_timm(cls, text: str | Iterable, frame: Frame | None = None) -> "Genotype":
        """Parse a timm arch string, a list of block strings, or the nested list ``to_timm_arch_def`` returns."""
        items, parsed = split_frame(split_items(text))
        if frame is not None and not parsed.is_default and parsed != frame:
            raise ValueError(f"the string's stem/head items ({parsed}) contradict the frame passed in ({frame})")
        blocks = tuple(timm_grammar.parse_block(item, i) for i, item in enumerate(items))
        frame = frame if frame is not None else parsed
        try:  # what timm would build differently is refused, never changed
            timm_grammar.format_blocks(blocks, frame)
        except ValueError as err:
            raise ValueError(f"timm builds another network from this string: {err}") from None
        return cls(blocks, frame)

    # -- flat dict (Ray configs) -----------------------------------------
    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"num_blocks": len(self.blocks)}
        for i, block in enumerate(self.blocks, start=1):
            for f in fields(BlockGene):
                out[f"b{i}_{f.name}"] = getattr(block, f.name)
        if not self.frame.is_default:  # None (an SE activation equal to the activation) is left out
            out.update({key: getattr(self.frame, name) for key, name in _FRAME_KEYS.items()
                        if getattr(self.frame, name) is not None})
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
        frame_kwargs = {name: data.pop(key) for key, name in _FRAME_KEYS.items() if key in data}
        if data:
            raise ValueError(f"genotype dict has unknown keys {sorted(data)}; allowed: num_blocks, "
                             f"b<i>_<{'|'.join(names)}>, {', '.join(_FRAME_KEYS)}")
        return cls(tuple(blocks), Frame(**frame_kwargs))
