"""Canonical networks: one key per network, however the genotype writes it.

Different genotypes can build the same network, and a search should neither train nor count
such a network twice (issue 19).  ``network_key(genotype)`` expands the blocks into layers (the
first layer of a block has its stride and the previous output as input, the others stride 1 and
``in == out``) and describes each layer by the structure it builds:

* an identity layer -- op ``skip`` at stride 1 with ``in == out`` -- builds nothing and is left out,
  so NAS-Bench-Macro's aliased keys (identities moved to the end of a stage: ``201`` builds as
  ``210``, Su et al. 2021) get one key, as do FBNet-style layer-wise spaces with ``skip``;
* the residual flag counts only where a residual can exist (stride 1, ``in == out``, an op that
  takes one): ``noskip`` on a strided or widening layer changes nothing;
* ``nodw`` (TF's ``c1``) always has a 3x3 expansion conv whatever its ``kernel`` says; at stride 1
  with an expansion it is the fused MBConv ``k3`` without squeeze-excite (both: 3x3 conv in ->
  in*e, BN, activation, 1x1 projection, BN), so it gets ``fused``'s key;
* squeeze-excite by its squeeze width (``max(1, int(in * se))``), not by its ratio;
* the whole frame (stem, head, their scaling, stem stride, activations).

Two genotypes build the same network iff their keys are equal.  Aliases that appear only after
scaling (depth or width rounding of a proxy) are the key of the scaled genotype
(``efficientnet.network_key(spec)``).
"""

from __future__ import annotations

from functools import lru_cache

from .genes import BlockGene
from .genotype import Genotype
from .ops import OPS


def _layer(block: BlockGene, cin: int, stride: int) -> tuple | None:
    cout = block.filters
    same = stride == 1 and cin == cout
    if block.op == "skip":
        return None if same else ("skip", 1, stride, cin, cout, 1, 0, None)
    residual = block.skip if same and OPS[block.op].residual else None
    squeeze = max(1, int(cin * block.se)) if block.se > 0 else 0
    if block.op == "nodw":
        if stride == 1 and block.expand > 1:
            return ("fused", 3, 1, cin, cout, block.expand, 0, residual)
        return ("nodw", 3, stride, cin, cout, block.expand, 0, residual)
    return (block.op, block.kernel, stride, cin, cout, block.expand, squeeze, residual)


def network_key(genotype: Genotype) -> tuple:
    """A hashable key of the network ``genotype`` builds: equal keys iff the same network."""
    if not isinstance(genotype, Genotype):
        raise TypeError(f"network_key takes a Genotype, got {type(genotype).__name__}")
    return _network_key(genotype)


@lru_cache(maxsize=1 << 16)  # genotypes are immutable; the no-repeat rule asks the same ones again and again
def _network_key(genotype: Genotype) -> tuple:
    f = genotype.frame
    layers = []
    cin = f.stem
    for block in genotype.blocks:
        for i in range(block.layers):
            item = _layer(block, cin, block.stride if i == 0 else 1)
            if item is not None:
                layers.append(item)
            cin = block.filters
    frame = (f.stem, f.stem_scaling, f.stem_stride, f.head, f.head_scaling, f.activation, f.se_act)
    return frame, tuple(layers)


__all__ = ["network_key"]
