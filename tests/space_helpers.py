"""Genotypes for the op tests: NAS-Bench-Macro keys, and random genotypes over every op and activation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from search_spaces import BlockGene, Frame, Genotype
from search_spaces.genes import ACTIVATIONS
from search_spaces.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
MACRO_TABLE = ROOT / "nas" / "builtin" / "nas-bench-macro" / "nas-bench-macro_cifar10.json"

#: NAS-Bench-Macro (Su et al. 2021; nas/builtin/nas-bench-macro/README.md): 8 searchable layers in 3 stages,
#: (stride, filters) per layer; stem 3x3 32 stride 1, head 1x1 1280, ReLU, no SE, CIFAR-10 at 32x32.
MACRO_LAYERS = ((2, 64), (1, 64), (2, 128), (1, 128), (1, 128), (2, 256), (1, 256), (1, 256))
#: Digit -> the layer's fields: 0 identity, 1 MB3_K3, 2 MB6_K5.
MACRO_OPS = ({"op": "skip", "kernel": 1}, {"op": "mbconv", "expand": 3, "kernel": 3}, {"op": "mbconv", "expand": 6, "kernel": 5})
MACRO_FRAME = Frame(stem=32, stem_stride=1, stem_scaling="fixed", head=1280, head_scaling="fixed",
                    activation="relu")
MACRO_RESOLUTION, MACRO_CLASSES = 32, 10


def macro_genotype(key: str) -> Genotype:
    """The genotype of a NAS-Bench-Macro table key (8 digits, one per layer)."""
    if len(key) != len(MACRO_LAYERS) or set(key) - set("012"):
        raise ValueError(f"a NAS-Bench-Macro key is 8 digits of 0, 1, 2, got {key!r}")
    return Genotype(tuple(BlockGene(stride=s, filters=f, layers=1, **MACRO_OPS[int(d)])
                          for d, (s, f) in zip(key, MACRO_LAYERS)), MACRO_FRAME)


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
