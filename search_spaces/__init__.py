"""Genotypes and search spaces (no torch, no Ray)."""

from .genes import DEFAULT_FRAME, HEAD_SCALINGS, OPS, STEM_SCALINGS, Frame
from .genotype import BLOCK_SEPARATOR, BlockGene, Genotype
from .named import NAMED_GENOTYPES, ZOO, ZooEntry, named_genotype, resolve_genotype
from .registry import get_space, list_spaces, register_space
from .space import CONV_OP_NAMES, CONV_OPS, DECISIONS, BlockChoices, SearchSpace, mnasnet_space, tiny_space
from .tf_grammar import GRAMMAR_VERSION, convert_legacy

__all__ = [
    "BLOCK_SEPARATOR", "BlockGene", "BlockChoices", "CONV_OPS", "CONV_OP_NAMES", "DECISIONS", "DEFAULT_FRAME",
    "Frame", "GRAMMAR_VERSION", "Genotype", "HEAD_SCALINGS", "NAMED_GENOTYPES", "OPS", "STEM_SCALINGS",
    "SearchSpace", "ZOO", "ZooEntry", "convert_legacy", "get_space", "list_spaces", "mnasnet_space",
    "named_genotype", "register_space", "resolve_genotype", "tiny_space",
]
