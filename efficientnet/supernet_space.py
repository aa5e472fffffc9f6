"""What a supernet of a space must hold, read from the space's positions; and its sandwich paths.

``block_layouts(space, width, depth)`` reads ``SearchSpace.positions`` (one per genotype block:
its stride and every complete option, ``combos()``) and returns, per block, the channel counts a
path can give its layers at the supernet's width (in: the previous block's filter options, or
the stem), the most layers at its depth, and the options.  ``layer_members`` then lists every
layer a path can put at one layer position -- every op option at every channel count -- which
is what the weights of that position are sized by (``supernet_ops.SuperLayer``).

The sandwich rule (BigNAS, Yu et al. 2020, arXiv:2003.11142, section 3.1) trains the largest and
the smallest path every step: the extremes of the SHARED weights.  For a space of any ops they are
defined per block by its **main weight group** -- the group (``supernet_ops.weight_group``, under
the supernet's sharing options) that the most options of the block run on, ties to the group
with the costliest option: :func:`sandwich`'s largest path takes the costliest option of that
group at every block (largest expansion, kernel, SE, filters, layers of MBConv in MnasNet; MB6_K5
in NAS-Bench-Macro), the smallest the cheapest (MBConv expansion 3, kernel 3, no SE, fewest filters
and layers; MB3_K3), ties to the skip flag on, then to the declaration's order.  Cost: analytic
MACs, then params, of the block's layers at the largest input channels.
"""

from __future__ import annotations

from typing import NamedTuple

from search_spaces import DEFAULT_FRAME, BlockGene, Genotype, SearchSpace

from .layer import LayerSpec
from .ops import op
from .scaling import round_filters, round_repeats, scale_arch
from .stages import ArchConfig, stages_from_genotype
from .supernet_ops import weight_group

#: The input size the sandwich's costs are taken at (any size orders layers of one position alike).
_COST_SIZE = 32
#: The activation layers are costed with (counts do not depend on it).
_ANY_ACT = DEFAULT_FRAME.activation


class BlockLayout(NamedTuple):
    """One genotype block of a supernet: stride, the (scaled) channel counts its first layer can take in and
    every layer can put out, its most (scaled) layers, and its options (complete field dicts, unscaled)."""

    stride: int
    in_filters: tuple[int, ...]
    out_filters: tuple[int, ...]
    depth: int
    options: tuple[dict, ...]


def frame_arch(space: SearchSpace, width: float, depth: float) -> ArchConfig:
    """The stem, head, stem stride and activations every path of ``space`` shares, at the given size."""
    probe = space.decode([0] * len(space.decision_sizes))
    return scale_arch(stages_from_genotype(probe), width, depth)


def block_layouts(space: SearchSpace, width: float, depth: float) -> list[BlockLayout]:
    stem = frame_arch(space, width, depth).stem
    out, previous = [], (stem,)
    for position in space.positions:
        options = tuple(position.combos())
        filters = tuple(sorted({round_filters(o["filters"], width) for o in options}))
        layers = max(round_repeats(o["layers"], depth) for o in options)
        out.append(BlockLayout(position.stride, previous, filters, layers, options))
        previous = filters
    return out


def _layer(option: dict, cin: int, cout: int, stride: int, act: str, se_act: str) -> LayerSpec:
    return op(option["op"]).layer(cin, cout, option["kernel"], stride, option["expand"], option["se"], True,
                                  _COST_SIZE, 0, act, se_act)


def layer_members(block: BlockLayout, i: int, act: str, se_act: str) -> list[LayerSpec]:
    """Every distinct layer a path can put at layer ``i`` of ``block`` (all op options x channel counts)."""
    ins = block.in_filters if i == 0 else block.out_filters
    stride = block.stride if i == 0 else 1
    kinds = {(o["op"], o["kernel"], o["expand"], o["se"]): o for o in block.options}
    found: dict[tuple, LayerSpec] = {}
    for option in kinds.values():
        for cin in ins:
            for cout in block.out_filters:
                spec = _layer(option, cin, cout, stride, act, se_act)
                found.setdefault(spec.key(), spec)
    return list(found.values())


def _option_cost(option: dict, block: BlockLayout, width: float, depth: float) -> tuple[int, int]:
    cout = round_filters(option["filters"], width)
    first = _layer(option, max(block.in_filters), cout, block.stride, _ANY_ACT, _ANY_ACT)
    rest = _layer(option, cout, cout, 1, _ANY_ACT, _ANY_ACT)
    n = round_repeats(option["layers"], depth)
    (p0, m0), (p1, m1) = op(first.kind).cost(first), op(rest.kind).cost(rest)
    return m0 + (n - 1) * m1, p0 + (n - 1) * p1


def sandwich(space: SearchSpace, width: float = 1.0, depth: float = 1.0, share_sepconv: bool = False,
             separate: tuple[str, ...] = ()) -> tuple[Genotype, Genotype]:
    """(largest, smallest) path of ``space`` for the sandwich rule (see the module docstring)."""
    largest, smallest = [], []
    for block in block_layouts(space, width, depth):
        groups: dict[str, list[tuple[int, tuple[int, int], dict]]] = {}
        for order, option in enumerate(block.options):
            first = _layer(option, max(block.in_filters), max(block.out_filters), block.stride, _ANY_ACT, _ANY_ACT)
            groups.setdefault(weight_group(first, share_sepconv, separate), []).append(
                (order, _option_cost(option, block, width, depth), option))
        main = max(groups.values(), key=lambda g: (len(g), max(cost for _, cost, _ in g)))
        largest.append(_gene(block, _best(main, cheapest=False)))
        smallest.append(_gene(block, _best(main, cheapest=True)))
    frame = space.frame
    return Genotype(tuple(largest), frame), Genotype(tuple(smallest), frame)


def _best(entries: list[tuple[int, tuple[int, int], dict]], cheapest: bool) -> dict:
    """The costliest (``cheapest``: cheapest) option; ties to the skip flag on, then the first declared."""
    def key(entry):
        order, cost, option = entry
        return (tuple(-c for c in cost) if cheapest else cost, option["skip"], -order)

    return max(entries, key=key)[2]


_GENE_FIELDS = ("op", "kernel", "expand", "se", "skip", "filters", "layers")


def _gene(block: BlockLayout, option: dict) -> BlockGene:
    return BlockGene(stride=block.stride, **{name: option[name] for name in _GENE_FIELDS})
