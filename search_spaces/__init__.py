"""Genotypes and search spaces (no torch, no Ray)."""

from .genotype import BLOCK_SEPARATOR, BlockGene, Genotype
from .named import NAMED_GENOTYPES, named_genotype, resolve_genotype
from .registry import get_space, list_spaces, register_space
from .space import CONV_OP_NAMES, CONV_OPS, DECISIONS, BlockChoices, SearchSpace, mnasnet_space, tiny_space

__all__ = [
    "BLOCK_SEPARATOR", "BlockGene", "BlockChoices", "CONV_OPS", "CONV_OP_NAMES", "DECISIONS", "Genotype",
    "NAMED_GENOTYPES", "SearchSpace", "get_space", "list_spaces", "mnasnet_space", "named_genotype",
    "register_space", "resolve_genotype", "tiny_space",
]
