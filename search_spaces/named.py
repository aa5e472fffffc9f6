"""Named genotypes: the reference zoo, each entry as its reference implementation writes it.

Every entry is the arch definition of its source, verbatim where the source
is a string (stage lists of timm's ``efficientnet.py`` ``_gen_*`` functions,
TF's ``mnasnet_models.py`` block strings), plus the stem/head the source's
builder uses (``stem<N>[_fixed]`` / ``head<N>[_fixed|_up]`` items).  ``params``
is the reference's parameter count at 224x224 and 1000 classes, asserted by
tests/test_zoo.py against ``nas show NAME --json``.  ``activation`` is the one
the source builds with; ``genotype()`` puts it in the genotype's frame
(MnasNet-A1 ReLU, EfficientNet-Lite0 ReLU6, ...), so its strings carry it
(``act_relu``), ``to_tf()`` refuses it (TF's efficientnet_builder builds
swish), and everything built from the genotype uses it.  Parameters and MACs
do not depend on it.

Left out because the builder cannot express them exactly (README, "Genotype
strings"): timm's mixnet (mixed kernels ``k3.5.7``), tinynet (depth rounding
``round``), efficientnet_es/edgetpu (``er`` with k>3 or stride 2), the
MobileNetV3 family (hard-swish, ``uir``/``cn`` heads).
"""

from __future__ import annotations

from dataclasses import dataclass

from .genotype import Genotype
from .timm_grammar import TIMM_TYPES

#: EfficientNet-B0, Tan & Le 2019 (arXiv:1905.11946) Table 1, as the block
#: strings of tensorflow/tpu efficientnet_builder.
EFFICIENTNET_B0 = (
    "r1_k3_s11_e1_i32_o16_se0.25,r2_k3_s22_e6_i16_o24_se0.25,r2_k5_s22_e6_i24_o40_se0.25,"
    "r3_k3_s22_e6_i40_o80_se0.25,r3_k5_s11_e6_i80_o112_se0.25,r4_k5_s22_e6_i112_o192_se0.25,"
    "r1_k3_s11_e6_i192_o320_se0.25")

#: MnasNet-A1, Tan et al. 2019 (arXiv:1807.11626) Figure 7, as in
#: tensorflow/tpu mnasnet_models.mnasnet_a1 (its head is a fixed 1280).
MNASNET_A1 = (
    "r1_k3_s11_e1_i32_o16_noskip,r2_k3_s22_e6_i16_o24,r3_k5_s22_e3_i24_o40_se0.25,"
    "r4_k3_s22_e6_i40_o80,r2_k3_s11_e6_i80_o112_se0.25,r3_k5_s22_e6_i112_o160_se0.25,"
    "r1_k3_s11_e6_i160_o320,head1280_fixed")


@dataclass(frozen=True)
class ZooEntry:
    """A reference network: its definition, grammar, source, activation and reference parameter count."""

    definition: str | tuple
    grammar: str  # "tf" or "timm"
    source: str
    activation: str
    params: int

    def genotype(self) -> Genotype:
        """The reference network: its definition in the activation its source builds with (in the frame)."""
        if self.grammar == "tf":
            g = Genotype.from_string(self.definition)
        else:
            g = Genotype.from_timm(self.definition)
        return g.with_frame(activation=self.activation)


_TIMM = "timm efficientnet.py "
ZOO: dict[str, ZooEntry] = {
    "b0": ZooEntry(EFFICIENTNET_B0, "tf", "tensorflow/tpu efficientnet_builder.efficientnet", "silu", 5_288_548),
    "mnasnet-a1": ZooEntry(MNASNET_A1, "tf", "tensorflow/tpu mnasnet_models.mnasnet_a1", "relu", 3_887_038),
    "mnasnet-b1": ZooEntry(
        (["ds_r1_k3_s1_c16_noskip"], ["ir_r3_k3_s2_e3_c24"], ["ir_r3_k5_s2_e3_c40"], ["ir_r3_k5_s2_e6_c80"],
         ["ir_r2_k3_s1_e6_c96"], ["ir_r4_k5_s2_e6_c192"], ["ir_r1_k3_s1_e6_c320_noskip"], "head1280_fixed"),
        "timm", _TIMM + "_gen_mnasnet_b1", "relu", 4_383_312),
    "mnasnet-small": ZooEntry(
        ("stem8", ["ds_r1_k3_s1_c8"], ["ir_r1_k3_s2_e3_c16"], ["ir_r2_k3_s2_e6_c16"], ["ir_r4_k5_s2_e6_c32_se0.25"],
         ["ir_r3_k3_s1_e6_c32_se0.25"], ["ir_r3_k5_s2_e6_c88_se0.25"], ["ir_r1_k3_s1_e6_c144"], "head1280_fixed"),
        "timm", _TIMM + "_gen_mnasnet_small", "relu", 2_030_264),
    "mnasnet-d1": ZooEntry(
        "r1_k3_s11_e9_i32_o24,r3_k3_s22_e9_i24_o36,r5_k3_s22_e9_i36_o48,r4_k5_s22_e9_i48_o96,"
        "r5_k7_s11_e3_i96_o96,r3_k3_s22_e9_i96_o80,r1_k7_s11_e6_i80_o320_noskip,head1280_fixed",
        "tf", "tensorflow/tpu mnasnet_models.mnasnet_d1", "relu", 3_638_404),
    "spnasnet-100": ZooEntry(
        (["ds_r1_k3_s1_c16_noskip"], ["ir_r3_k3_s2_e3_c24"], ["ir_r1_k5_s2_e6_c40", "ir_r3_k3_s1_e3_c40"],
         ["ir_r1_k5_s2_e6_c80", "ir_r3_k3_s1_e3_c80"], ["ir_r1_k5_s1_e6_c96", "ir_r3_k5_s1_e3_c96"],
         ["ir_r4_k5_s2_e6_c192"], ["ir_r1_k3_s1_e6_c320_noskip"], "head1280_fixed"),
        "timm", _TIMM + "_gen_spnasnet", "relu", 4_421_616),
    "mobilenetv2-100": ZooEntry(
        (["ds_r1_k3_s1_c16"], ["ir_r2_k3_s2_e6_c24"], ["ir_r3_k3_s2_e6_c32"], ["ir_r4_k3_s2_e6_c64"],
         ["ir_r3_k3_s1_e6_c96"], ["ir_r3_k3_s2_e6_c160"], ["ir_r1_k3_s1_e6_c320"], "head1280_up"),
        "timm", _TIMM + "_gen_mobilenet_v2", "relu6", 3_504_872),
    "efficientnet-lite0": ZooEntry(
        ("stem32_fixed", ["ds_r1_k3_s1_e1_c16"], ["ir_r2_k3_s2_e6_c24"], ["ir_r2_k5_s2_e6_c40"],
         ["ir_r3_k3_s2_e6_c80"], ["ir_r3_k5_s1_e6_c112"], ["ir_r4_k5_s2_e6_c192"], ["ir_r1_k3_s1_e6_c320"],
         "head1280_fixed"),
        "timm", _TIMM + "_gen_efficientnet_lite", "relu6", 4_652_008),
    "fbnet-c": ZooEntry(
        ("stem16", ["ir_r1_k3_s1_e1_c16"], ["ir_r1_k3_s2_e6_c24", "ir_r2_k3_s1_e1_c24"],
         ["ir_r1_k5_s2_e6_c32", "ir_r1_k5_s1_e3_c32", "ir_r1_k5_s1_e6_c32", "ir_r1_k3_s1_e6_c32"],
         ["ir_r1_k5_s2_e6_c64", "ir_r1_k5_s1_e3_c64", "ir_r2_k5_s1_e6_c64"],
         ["ir_r3_k5_s1_e6_c112", "ir_r1_k5_s1_e3_c112"], ["ir_r4_k5_s2_e6_c184"], ["ir_r1_k3_s1_e6_c352"],
         "head1984_fixed"),
        "timm", _TIMM + "_gen_fbnetc", "relu", 5_572_200),
}

NAMED_GENOTYPES = {name: entry.definition for name, entry in ZOO.items()}


def named_genotype(name: str) -> Genotype:
    if name not in ZOO:
        raise ValueError(f"unknown genotype name {name!r}; known: {', '.join(ZOO)}")
    return ZOO[name].genotype()


def resolve_genotype(text: str) -> Genotype:
    """A genotype from a name (``b0``), a TF block string or a timm arch string."""
    text = text.strip()
    if text in ZOO:
        return named_genotype(text)
    items = [part.strip() for part in text.split(",")]
    first = next((item for item in items if not item.startswith("stem")), items[0])
    head = first.split("_", 1)[0]
    if head in TIMM_TYPES or (len(first.split("_")) > 1 and not head.startswith("r")):
        return Genotype.from_timm(text)
    if not head.startswith("r"):
        raise ValueError(f"{text!r} is neither a genotype name ({', '.join(ZOO)}) nor a block string such as "
                         "'r1_k3_s11_e1_i32_o16_se0.25,...' or a timm string 'ds_r1_k3_s1_c16,...'")
    return Genotype.from_string(text)
