"""Few-shot supernets: one sub-supernet per option of one decision, each path scored by its own.

Few-shot NAS (Zhao et al., ICML 2021, arXiv:2006.06863, section 3): the one-shot supernet, trained for
a while, is split into sub-supernets that each cover the paths with one option of a chosen decision
(there: the first layer's op).  Each starts from the shared weights and is trained from then on only on
its own paths, so paths that disagree on that decision stop interfering through shared weights
downstream.  :class:`SplitSupernet` holds the sub-supernets (plain :class:`Supernet` modules of the same
space and size) and routes every call taking a genotype -- ``forward``, ``recalibrate``,
``path_layers``, ``extract`` -- to the sub-supernet of the genotype's option (``route``).  What does not
depend on a path (the space, the sizes, ``spec``, ``validate``, the sandwich extremes) is the first
sub-supernet's, the same for all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from search_spaces import Genotype

from .supernet import Supernet

_ROUTE_CACHE = 4096


class SplitSupernet(nn.Module):
    """Sub-supernets of ``decision`` (an index of ``space.decision_sizes``; 0: the space's first), one per option.

    ``SplitSupernet.split(net, decision)`` copies a trained ``net`` into every sub-supernet;
    ``SplitSupernet(space, decision, **options)`` builds untrained ones (to load a checkpoint into).
    """

    def __init__(self, space, decision: int = 0, **options) -> None:
        super().__init__()
        sizes = space.decision_sizes
        if not 0 <= decision < len(sizes):
            raise ValueError(f"split decision {decision} is not a decision of space {space.name!r} "
                             f"(0..{len(sizes) - 1}: {', '.join(space.decision_names)})")
        if sizes[decision] < 2:
            raise ValueError(f"decision {decision} ({space.decision_names[decision]}) of space {space.name!r} has "
                             "one option: nothing to split by")
        self.decision = decision
        self.parts = nn.ModuleList(Supernet(space, **options) for _ in range(sizes[decision]))
        self.space = space
        self.frame = space.frame
        self.options = self.parts[0].options
        self._routes: OrderedDict[Genotype, int] = OrderedDict()

    @classmethod
    def split(cls, net: Supernet, decision: int = 0) -> "SplitSupernet":
        """Sub-supernets that all start from ``net``'s weights and buffers (on ``net``'s device)."""
        with torch.random.fork_rng(devices=[]):  # the fresh weights are overwritten: leave the global RNG alone
            out = cls(net.space, decision, **net.options)
        state = net.state_dict()
        for part in out.parts:
            part.load_state_dict(state)
        return out.to(net.classifier.weight.device).train(net.training)

    @property
    def record(self) -> dict:
        """What a checkpoint records to rebuild it (``from_record``)."""
        return {"decision": self.decision, "parts": len(self.parts)}

    def route(self, genotype: Genotype) -> int:
        """The sub-supernet of ``genotype``: its option of the split decision."""
        k = self._routes.get(genotype)
        if k is None:
            k = int(self.space.encode(genotype)[self.decision])
            self._routes[genotype] = k
            if len(self._routes) > _ROUTE_CACHE:
                self._routes.popitem(last=False)
        return k

    def part(self, genotype: Genotype) -> Supernet:
        return self.parts[self.route(genotype)]

    # -- the same for every path ----------------------------------------------------------------------
    def spec(self, genotype: Genotype):
        return self.parts[0].spec(genotype)

    def validate(self, genotype: Genotype) -> None:
        self.parts[0].validate(genotype)

    def largest(self) -> Genotype:
        return self.parts[0].largest()

    def smallest(self) -> Genotype:
        return self.parts[0].smallest()

    def batchnorms(self) -> list[nn.BatchNorm2d]:
        return [bn for part in self.parts for bn in part.batchnorms()]

    def zero_init(self) -> None:
        for part in self.parts:
            part.zero_init()

    # -- routed to the path's sub-supernet --------------------------------------------------------------
    def forward(self, x: torch.Tensor, genotype: Genotype) -> torch.Tensor:  # type: ignore[override]
        return self.part(genotype)(x, genotype)

    def recalibrate(self, genotype: Genotype, batches: Sequence[torch.Tensor]) -> None:
        self.part(genotype).recalibrate(genotype, batches)

    def path_layers(self, genotype: Genotype):
        return self.part(genotype).path_layers(genotype)

    def extract(self, genotype: Genotype):
        return self.part(genotype).extract(genotype)


def from_record(space, options: dict, record: dict | None) -> Supernet | SplitSupernet:
    """The untrained supernet a checkpoint describes: split when ``record`` (``SplitSupernet.record``) says so."""
    if not record:
        return Supernet(space, **options)
    net = SplitSupernet(space, int(record["decision"]), **options)
    if len(net.parts) != int(record["parts"]):
        raise ValueError(f"split record says {record['parts']} sub-supernets, decision {record['decision']} of "
                         f"space {space.name!r} has {len(net.parts)} options")
    return net


__all__ = ["SplitSupernet", "from_record"]
