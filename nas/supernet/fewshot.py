"""Few-shot training's pieces (``supernet.few_shot``): the split's optimizer and each sub-supernet's paths.

Few-shot NAS (Zhao et al. 2021, arXiv:2006.06863): after ``few_shot`` one-shot epochs the supernet is
split into one sub-supernet per option of ``few_shot_decision`` (``efficientnet.fewshot.SplitSupernet``);
``nas.supernet.train`` then trains sub-supernet ``step mod K`` at every step, on paths that all have its
option: its own sandwich extremes (the largest and smallest paths with that option) and sampled paths
moved onto it.
"""

from __future__ import annotations

import numpy as np
import torch

from efficientnet.fewshot import SplitSupernet
from search_spaces import Genotype


def route_to(space, genotype: Genotype, decision: int, option: int) -> Genotype:
    """``genotype`` with option ``option`` at ``decision`` (the other decisions unchanged)."""
    code = np.array(space.encode(genotype))
    code[decision] = option
    return space.decode(code)


def part_extremes(space, largest: Genotype, smallest: Genotype, decision: int) -> list[tuple[Genotype, Genotype]]:
    """Per option of ``decision``: the sandwich's largest and smallest paths moved onto that option."""
    return [(route_to(space, largest, decision, k), route_to(space, smallest, decision, k))
            for k in range(space.decision_sizes[decision])]


def split_optimizer(old: torch.optim.Optimizer, net: torch.nn.Module, split: SplitSupernet,
                    new: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """``new`` (an optimizer over ``split``'s parameters) holding, for every sub-supernet, a copy of ``old``'s
    state (momentum, Adam moments) of ``net``'s matching parameter: each sub-supernet continues the
    one-shot run's optimisation exactly."""
    params = list(net.parameters())
    for part in split.parts:
        for mine, copy in zip(params, part.parameters()):
            state = old.state.get(mine)
            if state:
                new.state[copy] = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
    return new
