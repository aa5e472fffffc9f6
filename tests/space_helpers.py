"""Genotypes for the op tests: NAS-Bench-Macro keys, and random genotypes over every op and activation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from search_spaces import BlockGene, Frame, Genotype, get_space
from search_spaces.genes import ACTIVATIONS
from search_spaces.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
MACRO_TABLE = ROOT / "nas" / "builtin" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"

MACRO_RESOLUTION, MACRO_CLASSES = 32, 10


def macro_genotype(key: str) -> Genotype:
    """The genotype of a NAS-Bench-Macro table key (8 digits, one per layer: 0 identity, 1 MB3_K3, 2 MB6_K5)."""
    if len(key) != 8 or set(key) - set("012"):
        raise ValueError(f"a NAS-Bench-Macro key is 8 digits of 0, 1, 2, got {key!r}")
    return get_space("nas-bench-macro").decode([int(d) for d in key])


def macro_table() -> dict[str, dict]:
    return json.loads(MACRO_TABLE.read_text())


def random_block(rng: np.random.Generator, op: str, stride: int, filters: int, layers: int) -> BlockGene:
    """A block of ``op`` with random kernel, expansion, SE and skip, the op's pinned fields kept."""
    fields = {"kernel": int(rng.choice([3, 5, 7])), "expand": int(rng.choice([1, 2, 3, 6])),
              "se": float(rng.choice([0.0, 0.25])), "skip": bool(rng.integers(2))}
    fields.update(OPS[op].pinned)
    return BlockGene(op=op, stride=stride, filters=filters, layers=layers, **fields)


def random_genotype(rng: np.random.Generator, ops: tuple[str, ...] = tuple(OPS), blocks: int = 5) -> Genotype:
    """A random genotype using ``ops`` (each op at least once when ``blocks`` allows), with a random frame:
    stem width and stride, activation and SE activation."""
    chosen = list(ops) + [str(o) for o in rng.choice(list(ops), max(0, blocks - len(ops)))]
    rng.shuffle(chosen)
    out, filters = [], int(rng.choice([8, 16]))
    stem = filters if rng.integers(2) else 16
    for op in chosen:
        stride = int(rng.choice([1, 2]))
        filters = filters if rng.integers(2) else int(rng.choice([8, 16, 24, 32]))
        out.append(random_block(rng, op, stride, filters, int(rng.integers(1, 3))))
    act = str(rng.choice(ACTIVATIONS))
    se_act = None if rng.integers(2) else str(rng.choice(ACTIVATIONS))
    frame = Frame(stem=stem, stem_stride=int(rng.choice([1, 2])), activation=act, se_activation=se_act)
    return Genotype(tuple(out), frame)


#: A test space using every op of the registry, per stage and per layer, with elastic filters, layers, kernel
#: (3/5/7), expansion, SE and skip, hard-swish and a ReLU SE: what the supernet must share and extract exactly.
EVERY_OP = {
    "name": "every-op",
    "source": "effnas test space: every op of search_spaces.OPS",
    "frame": {"stem": 16, "stem_stride": 1, "activation": "hswish", "se_activation": "relu"},
    "stages": [
        {"stride": 1, "decisions": {
            "op": [{"op": "mbconv", "expand": 1, "kernel": 3, "se": 0.25}, {"op": "mbconv", "expand": 4, "kernel": 5},
                   {"op": "mbconv", "expand": 6, "kernel": 3, "se": 0.25}, {"op": "irpw", "kernel": 5, "se": 0.25},
                   {"op": "irpw", "kernel": 3}, {"op": "skip"}],
            "filters": [8, 16], "layers": [1, 2]}},
        {"stride": 2, "decisions": {
            "op": [{"op": "conv", "kernel": 3, "se": 0.25}, {"op": "conv", "kernel": 5}, {"op": "fused", "kernel": 3},
                   {"op": "fused", "expand": 4, "kernel": 5, "se": 0.25}, {"op": "nodw"},
                   {"op": "nodw", "expand": 3}, {"op": "skip"}],
            "filters": [16, 24], "layers": [1, 2]}},
        {"stride": 2, "filters": 32, "layers": 2, "per": "layer", "decisions": {
            "op": [{"op": "skip"}, {"op": "mbconv", "expand": 3, "kernel": 3},
                   {"op": "mbconv", "expand": 6, "kernel": 5}, {"op": "fused", "expand": 2, "kernel": 3}]}},
        {"stride": 1, "op": "mbconv", "decisions": {
            "expand": [3, 6], "kernel": [3, 5, 7], "se": [0.0, 0.25], "skip": [True, False], "filters": [24, 32],
            "layers": [1, 2, 3]}},
    ],
}
