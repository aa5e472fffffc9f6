"""A search space is a declaration: a frame and one :class:`~search_spaces.positions.Position` per block.

``SearchSpace(declaration)`` reads a declaration mapping strictly (:mod:`search_spaces.declaration`;
a YAML file, a shipped name or a mapping go through :func:`search_spaces.registry.load_space`).
Everything works off the positions: ``decision_sizes`` and ``decision_names`` (``b<i>_<decision>``,
``i`` the 1-based genotype block), ``encode``/``decode`` (one integer per decision, for the RL
controller), ``validate`` (naming block, field, value and the allowed values), ``sample`` (uniform)
and ``mutate``.  Randomness always comes from a ``numpy.random.Generator`` the caller passes in.

The frame belongs to the space: ``decode`` returns genotypes with the space's frame, and
``validate`` checks the frame's stem width and stride and its activations; the head width and the
stem/head width scaling belong to the target model (a zoo genotype with TF's fixed 1280 head is a
point of the MnasNet space).

A space travels by value: ``to_declaration()`` is a plain JSON-able dict and
``SearchSpace(space.to_declaration()) == space``; two spaces are equal when their declarations are.
``canonical(g)`` is :func:`search_spaces.canonical.network_key`: genotypes that build the same
network have equal keys.
"""

from __future__ import annotations

import json
import math
from typing import Mapping

import numpy as np

from .canonical import network_key
from .declaration import parse, plain
from .genes import BlockGene, Frame
from .genotype import Genotype
from .positions import Position, show, show_option

#: Frame fields a genotype must share with its space (head and scalings are the target model's).
SPACE_FRAME_FIELDS = ("stem", "stem_stride", "activation", "se_activation")
#: Encodings and decodings a space remembers (genotypes are immutable): evolution's mutations and the
#: controllers' state re-encode the same genotypes over and over.  Past this many, the memory starts afresh.
CODE_MEMORY = 1 << 16


class SearchSpace:
    """A declared space: ``name``, ``frame``, ``positions`` (one per genotype block) and its decisions."""

    def __init__(self, declaration: Mapping) -> None:
        self._declaration = plain(declaration)
        parsed = parse(self._declaration)
        self.name = parsed.name
        self.source = parsed.source
        self.description = parsed.description
        self.frame: Frame = parsed.frame
        self.stem = self.frame.stem  # kept for callers: the stem's width chains into block 1 ('i32')
        self.positions: tuple[Position, ...] = parsed.positions
        self._sizes = [n for p in self.positions for n in p.sizes]
        self._sizes_array = np.asarray(self._sizes, dtype=np.int64)
        self._mutable = [i for i, size in enumerate(self._sizes) if size > 1]
        self._names = [f"b{p.index + 1}_{d.name}" for p in self.positions for d in p.decisions]
        # validated genotype -> its decisions; decisions -> the genotype.  Shared by the equal spaces of a
        # process (a table's space, the experiment's, a Ray worker's), so a code decodes to one object
        # and caches keyed by genotypes (network keys) find it by identity.
        self._codes, self._decoded = _memory(json.dumps(self._declaration, sort_keys=True))

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, blocks={len(self.positions)}, cardinality={self.cardinality:.3g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._declaration == other._declaration

    def __reduce__(self):  # pickled (Ray, multiprocessing, deepcopy) by value: its declaration
        return SearchSpace, (self._declaration,)

    def __hash__(self) -> int:
        return hash(json.dumps(self._declaration, sort_keys=True))

    def to_declaration(self) -> dict:
        """The declaration as plain data (JSON-able): ``SearchSpace(space.to_declaration()) == space``."""
        return plain(self._declaration)  # type: ignore[return-value]

    # -- description ------------------------------------------------------
    @property
    def cardinality(self) -> int:
        """Points of the space (genotypes; see :meth:`canonical` for distinct networks)."""
        return math.prod(p.size for p in self.positions)

    @property
    def decision_sizes(self) -> list[int]:
        """Number of options of every integer decision, in ``encode`` order."""
        return list(self._sizes)

    @property
    def decision_names(self) -> list[str]:
        return list(self._names)

    def canonical(self, genotype: Genotype) -> tuple:
        """The network key of ``genotype``: equal keys, the same network (:func:`network_key`)."""
        return network_key(genotype)

    # -- encode / decode ----------------------------------------------------
    def encode(self, genotype: Genotype) -> list[int]:
        code = self._codes.get(genotype) if isinstance(genotype, Genotype) else None
        if code is None:
            self.validate(genotype)
            code = tuple(d.index_of(block) for block, position in zip(genotype.blocks, self.positions)
                         for d in position.decisions)  # type: ignore[misc]
            _remember(self._codes, genotype, code)
        return list(code)

    def decode(self, decisions: list[int] | tuple[int, ...] | np.ndarray) -> Genotype:
        decisions = [int(d) for d in decisions]
        if len(decisions) != len(self._sizes):
            raise ValueError(f"space {self.name!r} takes {len(self._sizes)} decisions, got {len(decisions)}")
        for name, value, size in zip(self._names, decisions, self._sizes):
            if not 0 <= value < size:
                raise ValueError(f"decision {name} must be in [0, {size - 1}], got {value}")
        return self._decode_valid(decisions)

    def _decode_valid(self, decisions: list[int]) -> Genotype:
        """``decode`` of plain ints already known to be in range (``sample``/``mutate`` make them so)."""
        key = tuple(decisions)
        genotype = self._decoded.get(key)
        if genotype is None:
            blocks, start = [], 0
            for position in self.positions:
                n = len(position.decisions)
                blocks.append(BlockGene(**position.block_fields(decisions[start:start + n])))  # type: ignore
                start += n
            genotype = Genotype(tuple(blocks), self.frame)
            _remember(self._decoded, key, genotype)
        return genotype

    # -- validate -----------------------------------------------------------
    def validate(self, genotype: Genotype) -> None:
        """Raise ValueError naming the block, field, value and allowed values if out of space."""
        if not isinstance(genotype, Genotype):
            raise TypeError(f"expected a Genotype, got {type(genotype).__name__}")
        if len(genotype.blocks) != len(self.positions):
            raise ValueError(f"space {self.name!r} has {len(self.positions)} blocks, the genotype has "
                             f"{len(genotype.blocks)}")
        for name in SPACE_FRAME_FIELDS:
            have, want = getattr(genotype.frame, name), getattr(self.frame, name)
            if have != want:
                raise ValueError(f"genotype {name.replace('_', ' ')} {have} is not in space {self.name!r}; its "
                                 f"{name.replace('_', ' ')} is fixed at {want} (genotype.with_frame({name}="
                                 f"{want!r}) is; the head and the stem/head scaling belong to the target model)")
        for i, (block, position) in enumerate(zip(genotype.blocks, self.positions), start=1):
            _check_block(self.name, i, block, position)

    def contains(self, genotype: Genotype) -> bool:
        try:
            self.validate(genotype)
        except (ValueError, TypeError):
            return False
        return True

    # -- sample / mutate ----------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Genotype:
        """A uniform random point of the space."""
        return self.decode(rng.integers(self._sizes_array))

    def mutate(self, genotype: Genotype, rng: np.random.Generator, num: int = 1) -> Genotype:
        """Change ``num`` distinct decisions to a different value (never a no-op)."""
        decisions = self.encode(genotype)
        mutable = self._mutable
        if not mutable:
            raise ValueError(f"space {self.name!r} has no decision with more than one option")
        num = min(num, len(mutable))
        # one decision: rng.integers draws what rng.choice(size=1, replace=False) draws, 5x cheaper
        picks = (rng.integers(len(mutable)),) if num == 1 else rng.choice(len(mutable), size=num, replace=False)
        for pos in picks:
            i = mutable[int(pos)]
            shift = int(rng.integers(1, self._sizes[i]))
            decisions[i] = (decisions[i] + shift) % self._sizes[i]
        return self._decode_valid(decisions)


_MEMORIES: dict[str, tuple[dict, dict]] = {}


def _memory(declaration: str) -> tuple[dict, dict]:
    """The encode and decode memories of the spaces declared by ``declaration`` (JSON text)."""
    memory = _MEMORIES.get(declaration)
    if memory is None:
        if len(_MEMORIES) >= 64:  # many declarations (tests, user files): start afresh
            _MEMORIES.clear()
        memory = _MEMORIES[declaration] = ({}, {})
    return memory


def _remember(memory: dict, key, value) -> None:
    if len(memory) >= CODE_MEMORY:
        memory.clear()
    memory[key] = value


def _check_block(space: str, index: int, block: BlockGene, position: Position) -> None:
    def fail(fields: tuple[str, ...], allowed: list[str]) -> None:
        value = "/".join(show(getattr(block, f)) for f in fields)
        raise ValueError(f"genotype block {index}: {'/'.join(fields)}={value} is not in space {space!r}; "
                         f"allowed: {', '.join(allowed)}")

    if block.stride != position.stride:
        fail(("stride",), [show(position.stride)])
    for name, want in position.fixed.items():
        if getattr(block, name) != want:
            fail((name,), [show(want)])
    for d in position.decisions:
        if d.index_of(block) is not None:
            continue
        varying = d.varying()
        for name in d.fields:  # a field every option gives one value: name it alone
            if name not in varying and getattr(block, name) != d.options[0][name]:
                fail((name,), [show(d.options[0][name])])
        allowed = ["/".join(show(o[f]) for f in varying) for o in d.options]
        if len(varying) == 1:
            allowed = list(dict.fromkeys(allowed))
        fail(varying, allowed)


__all__ = ["SPACE_FRAME_FIELDS", "SearchSpace", "show_option"]
