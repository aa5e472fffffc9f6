"""Genotypes and search spaces (no torch, no Ray)."""

from .canonical import network_key
from .checks import DeclarationError
from .genes import ACTIVATIONS, DEFAULT_FRAME, HEAD_SCALINGS, OPS, STEM_SCALINGS, Frame
from .genotype import BLOCK_SEPARATOR, BlockGene, Genotype
from .named import NAMED_GENOTYPES, ZOO, ZooEntry, named_genotype, resolve_genotype
from .ops import OP_NAMES, OpFacts, op_facts
from .positions import LAYER_FIELDS, Decision, Position
from .registry import get_space, list_spaces, load_space, read_declaration, register_space, shipped_spaces
from .space import SearchSpace
from .tf_grammar import GRAMMAR_VERSION, convert_legacy

__all__ = [
    "ACTIVATIONS", "BLOCK_SEPARATOR", "BlockGene", "DEFAULT_FRAME", "DeclarationError", "Decision", "Frame",
    "GRAMMAR_VERSION", "Genotype", "HEAD_SCALINGS", "LAYER_FIELDS", "NAMED_GENOTYPES", "OPS", "OP_NAMES", "OpFacts",
    "Position", "STEM_SCALINGS", "SearchSpace", "ZOO", "ZooEntry", "convert_legacy", "get_space", "list_spaces",
    "load_space", "named_genotype", "network_key", "op_facts", "read_declaration", "register_space",
    "resolve_genotype", "shipped_spaces",
]
