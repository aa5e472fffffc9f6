"""Named genotypes: reference architectures as points of the MnasNet space."""

from __future__ import annotations

from .genotype import Genotype

#: EfficientNet-B0, Tan & Le 2019 (arXiv:1905.11946) Table 1, as the block
#: strings of tensorflow/tpu efficientnet_builder.
EFFICIENTNET_B0 = (
    "r1_k3_s11_e1_i32_o16_se0.25,r2_k3_s22_e6_i16_o24_se0.25,r2_k5_s22_e6_i24_o40_se0.25,"
    "r3_k3_s22_e6_i40_o80_se0.25,r3_k5_s11_e6_i80_o112_se0.25,r4_k5_s22_e6_i112_o192_se0.25,"
    "r1_k3_s11_e6_i192_o320_se0.25")

#: MnasNet-A1, Tan et al. 2019 (arXiv:1807.11626) Figure 7, as in
#: tensorflow/tpu mnasnet_models.mnasnet_a1.
MNASNET_A1 = (
    "r1_k3_s11_e1_i32_o16_noskip,r2_k3_s22_e6_i16_o24,r3_k5_s22_e3_i24_o40_se0.25,"
    "r4_k3_s22_e6_i40_o80,r2_k3_s11_e6_i80_o112_se0.25,r3_k5_s22_e6_i112_o160_se0.25,"
    "r1_k3_s11_e6_i160_o320")

NAMED_GENOTYPES = {"b0": EFFICIENTNET_B0, "mnasnet-a1": MNASNET_A1}


def named_genotype(name: str) -> Genotype:
    if name not in NAMED_GENOTYPES:
        raise ValueError(f"unknown genotype name {name!r}; known: {', '.join(NAMED_GENOTYPES)}")
    return Genotype.from_string(NAMED_GENOTYPES[name])


def resolve_genotype(text: str) -> Genotype:
    """A genotype from a name (``b0``), a TF block string or a timm arch string."""
    text = text.strip()
    if text in NAMED_GENOTYPES:
        return named_genotype(text)
    if text.split("_", 1)[0] in ("ds", "ir", "cn"):
        return Genotype.from_timm(text)
    if not text.startswith("r"):
        raise ValueError(f"{text!r} is neither a genotype name ({', '.join(NAMED_GENOTYPES)}) nor a block "
                         "string such as 'r1_k3_s11_e1_i32_o16_se0.25,...' or a timm string 'ds_r1_k3_s1_c16,...'")
    return Genotype.from_string(text)
