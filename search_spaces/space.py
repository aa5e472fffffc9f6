"""The MnasNet factorized hierarchical search space as a table.

Tan et al. 2019 (MnasNet, arXiv:1807.11626) section 4.1: the network is cut
into blocks over the MobileNetV2 skeleton; each block picks its own

* ConvOp: regular conv, separable conv (= MBConv expand 1), MBConv expand 3,
  MBConv expand 6;
* kernel size: 3x3, 5x5;
* squeeze-excite ratio: 0, 0.25;
* skip op: identity residual, none (the paper's third op, pooling, is left
  out: no reference network uses it);
* output filters F_i: three multiples of 8 around the base (see
  ``MNASNET_FILTERS``), which contain every width of EfficientNet-B0 and
  MnasNet-A1;
* layers N_i: {base-1, base, base+1}, never below 1.

Fixed: the stem (3x3 conv, stride 2, 32 filters), the head (1x1 conv to 1280,
pooling, classifier), each block's stride, and the rule that all layers of a
block are identical (only the first has the block's stride).  The head width
and whether width scaling applies to stem and head are the target model's,
not decisions of the space: ``validate`` checks only the stem's width.

Per block this gives 4*2*2*2*3*3 = 288 choices (4*2*2*2*3*2 = 192 for the first and
last block, whose base of one layer allows {1, 2}); the paper's 432 counts
three skip ops.  The whole space has ``cardinality`` = 192**2 * 288**5
~= 7.3e16 points.

Every operation works off the table: ``sample``, ``mutate``, ``validate``,
``encode``/``decode`` (six integer decisions per block, for the RL
controller).  Randomness always comes from a ``numpy.random.Generator`` the
caller passes in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .genes import STEM_FILTERS, BlockGene
from .genotype import Genotype

#: (op, expand) pairs of the ConvOp decision, in encoding order.
CONV_OPS: tuple[tuple[str, int], ...] = (("conv", 1), ("mbconv", 1), ("mbconv", 3), ("mbconv", 6))
CONV_OP_NAMES = ("conv", "sepconv", "mbconv3", "mbconv6")
DECISIONS = ("op", "kernel", "se", "skip", "filters", "layers")


@dataclass(frozen=True)
class BlockChoices:
    """What one block of the space may be: its fixed skeleton and its choices."""

    stride: int
    base_filters: int
    base_layers: int
    filters: tuple[int, ...]
    layers: tuple[int, ...]
    ops: tuple[tuple[str, int], ...] = CONV_OPS
    kernels: tuple[int, ...] = (3, 5)
    se: tuple[float, ...] = (0.0, 0.25)
    skip: tuple[bool, ...] = (True, False)

    def options(self) -> tuple[tuple, ...]:
        """The choice lists in ``DECISIONS`` order."""
        return (self.ops, self.kernels, self.se, self.skip, self.filters, self.layers)

    @property
    def size(self) -> int:
        return math.prod(len(o) for o in self.options())


def layers_around(base: int) -> tuple[int, ...]:
    return tuple(sorted({max(1, base - 1), base, base + 1}))


#: MobileNetV2 skeleton: (stride, base filters, base layers) of the 7 blocks.
MNASNET_SKELETON = ((1, 16, 1), (2, 24, 2), (2, 32, 3), (2, 64, 4), (1, 96, 3), (2, 160, 3), (1, 320, 1))
#: Filter choices: base - step, base, base + step with step 8, 8, 8, 16, 16,
#: 32, 64 (so that 40, 80, 112, 160/192 of B0 and A1 are reachable).
MNASNET_FILTERS = ((8, 16, 24), (16, 24, 32), (24, 32, 40), (48, 64, 80), (80, 96, 112),
                   (128, 160, 192), (256, 320, 384))


class SearchSpace:
    """A factorized hierarchical space: one :class:`BlockChoices` per block."""

    def __init__(self, name: str, blocks: tuple[BlockChoices, ...]) -> None:
        if not blocks:
            raise ValueError("a search space needs at least one block")
        self.name = name
        self.blocks = tuple(blocks)
        self.stem = STEM_FILTERS  # fixed in every space: the stem's filters chain into block 1 ('i32')
        self._sizes = [len(opt) for block in self.blocks for opt in block.options()]
        self._sizes_array = np.asarray(self._sizes)

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, blocks={len(self.blocks)}, cardinality={self.cardinality:.3g})"

    # -- description ------------------------------------------------------
    @property
    def cardinality(self) -> int:
        return math.prod(block.size for block in self.blocks)

    @property
    def decision_sizes(self) -> list[int]:
        """Number of options of every integer decision, in ``encode`` order."""
        return list(self._sizes)

    @property
    def decision_names(self) -> list[str]:
        return [f"b{i}_{d}" for i in range(1, len(self.blocks) + 1) for d in DECISIONS]

    # -- encode / decode ----------------------------------------------------
    def encode(self, genotype: Genotype) -> list[int]:
        self.validate(genotype)
        out: list[int] = []
        for block, choices in zip(genotype.blocks, self.blocks):
            values = ((block.op, block.expand), block.kernel, block.se, block.skip, block.filters, block.layers)
            out.extend(opts.index(v) for v, opts in zip(values, choices.options()))
        return out

    def decode(self, decisions: list[int] | tuple[int, ...] | np.ndarray) -> Genotype:
        decisions = [int(d) for d in decisions]
        if len(decisions) != len(self._sizes):
            raise ValueError(f"space {self.name!r} takes {len(self._sizes)} decisions, got {len(decisions)}")
        for name, value, size in zip(self.decision_names, decisions, self._sizes):
            if not 0 <= value < size:
                raise ValueError(f"decision {name} must be in [0, {size - 1}], got {value}")
        blocks = []
        n = len(DECISIONS)
        for i, choices in enumerate(self.blocks):
            idx = decisions[i * n:(i + 1) * n]
            opts = choices.options()
            (op, expand), kernel, se, skip, filters, layers = (opts[d][idx[d]] for d in range(n))
            blocks.append(BlockGene(op=op, kernel=kernel, stride=choices.stride, expand=expand, se=se,
                                    skip=skip, filters=filters, layers=layers))
        return Genotype(tuple(blocks))

    # -- validate -----------------------------------------------------------
    def validate(self, genotype: Genotype) -> None:
        """Raise ValueError naming the block, field and allowed values if out of space."""
        if not isinstance(genotype, Genotype):
            raise TypeError(f"expected a Genotype, got {type(genotype).__name__}")
        if len(genotype.blocks) != len(self.blocks):
            raise ValueError(f"space {self.name!r} has {len(self.blocks)} blocks, the genotype has {len(genotype.blocks)}")
        if genotype.frame.stem != self.stem:
            raise ValueError(f"genotype stem {genotype.frame.stem} is not in space {self.name!r}; its stem is fixed "
                             f"at {self.stem} (the head and the stem/head scaling belong to the target model)")
        for i, (block, choices) in enumerate(zip(genotype.blocks, self.blocks), start=1):
            checks = (
                ("op/expand", (block.op, block.expand), choices.ops),
                ("kernel", block.kernel, choices.kernels),
                ("se", block.se, choices.se),
                ("skip", block.skip, choices.skip),
                ("filters", block.filters, choices.filters),
                ("layers", block.layers, choices.layers),
                ("stride", block.stride, (choices.stride,)),
            )
            for field, value, allowed in checks:
                if value not in allowed:
                    raise ValueError(f"genotype block {i}: {field}={_show(value)} is not in space "
                                     f"{self.name!r}; allowed: {', '.join(_show(a) for a in allowed)}")

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
        mutable = [i for i, size in enumerate(self._sizes) if size > 1]
        if not mutable:
            raise ValueError(f"space {self.name!r} has no decision with more than one option")
        num = min(num, len(mutable))
        for pos in rng.choice(len(mutable), size=num, replace=False):
            i = mutable[int(pos)]
            shift = int(rng.integers(1, self._sizes[i]))
            decisions[i] = (decisions[i] + shift) % self._sizes[i]
        return self.decode(decisions)


def _show(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 2 and value in CONV_OPS:
        return CONV_OP_NAMES[CONV_OPS.index(value)]
    if isinstance(value, tuple):
        return "/".join(str(v) for v in value)
    return str(value)


def mnasnet_space() -> SearchSpace:
    """The 7-block MnasNet space over the MobileNetV2 skeleton (the default)."""
    blocks = tuple(
        BlockChoices(stride=s, base_filters=f, base_layers=n, filters=filters, layers=layers_around(n))
        for (s, f, n), filters in zip(MNASNET_SKELETON, MNASNET_FILTERS))
    return SearchSpace("mnasnet", blocks)


def tiny_space() -> SearchSpace:
    """A 3-block space with a few hundred points per block, for tests and smoke runs."""
    blocks = (
        BlockChoices(stride=1, base_filters=16, base_layers=1, filters=(8, 16), layers=(1,)),
        BlockChoices(stride=2, base_filters=24, base_layers=1, filters=(16, 24), layers=(1, 2)),
        BlockChoices(stride=2, base_filters=32, base_layers=1, filters=(24, 32), layers=(1, 2)),
    )
    return SearchSpace("tiny", blocks)
