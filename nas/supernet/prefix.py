"""Scoring many paths at once: paths that share leading layers share their work (a prefix tree).

``PathScorer`` recalibrates BN (SPOS section 3.3: each BN's statistics become the mean over fixed
calibration batches, the batches run in training mode) and then evaluates the held-out images.  A
layer's calibration inputs, its recalibrated statistics and its held-out outputs depend only on the
layers before it, so paths with equal leading layers (``Supernet.path_layers``) compute them once:
a depth-first walk over the tree of layer prefixes runs each distinct prefix's layer once, then the
head per path.  The result equals ``PathScorer`` per path (tests/test_supernet_prefix.py); on
NAS-Bench-Macro's 3,969 networks the stem and the first stage run a dozen times instead of 3,969.
A few-shot supernet (``efficientnet.fewshot.SplitSupernet``) is walked per sub-supernet, each path in
its own.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from efficientnet.fewshot import SplitSupernet
from search_spaces import Genotype


def _run(net, layer, calib: list[torch.Tensor], held: list[torch.Tensor]) -> tuple[list, list]:
    """``layer`` on the calibration batches in training mode (BN statistics: their cumulative mean), then on the
    held-out batches in eval mode with those statistics."""
    bns = net.batchnorms()
    net.train()
    out_c = []
    for t, x in enumerate(calib):
        for bn in bns:
            bn.momentum = 1.0 / (t + 1)
        out_c.append(layer(x))
    net.eval()
    return out_c, [layer(x) for x in held]


def score_paths(scorer, genotypes: Sequence[Genotype]) -> np.ndarray:
    """Held-out accuracy of every path of ``genotypes`` (validated by the caller), sharing prefixes' work;
    ``scorer`` is a ``nas.supernet.evaluate.PathScorer``."""
    net = scorer.net
    if scorer._windows is None:  # a held-out split too large to keep: one path at a time
        return np.array([scorer(g)[0] for g in genotypes])
    if not isinstance(net, SplitSupernet):
        return _score_net(net, scorer, genotypes)
    out = np.zeros(len(genotypes))
    parts: dict[int, list[int]] = {}
    for i, g in enumerate(genotypes):
        parts.setdefault(net.route(g), []).append(i)
    for k, members in parts.items():
        out[members] = _score_net(net.parts[k], scorer, [genotypes[i] for i in members])
    return out


def _score_net(net, scorer, genotypes: Sequence[Genotype]) -> np.ndarray:
    """``score_paths`` on one (sub-)supernet ``net``."""
    saved = [bn.momentum for bn in net.batchnorms()]
    was_training = net.training
    layers = [net.path_layers(g) for g in genotypes]
    correct = np.zeros(len(genotypes))
    try:
        with torch.no_grad(), scorer.autocast:
            calib, held = _run(net, net.stem, list(scorer.calib), [x for x, _, _ in scorer._windows])
            _walk(net, scorer, layers, list(range(len(genotypes))), 0, calib, held, correct)
    finally:
        for bn, m in zip(net.batchnorms(), saved):
            bn.momentum = m
        net.train(was_training)
    return correct / len(scorer.split.y)


def _walk(net, scorer, layers, members: list[int], depth: int, calib, held, correct: np.ndarray) -> None:
    """Paths ``members`` share their first ``depth`` layers, whose outputs are ``calib``/``held``."""
    groups: dict = {}
    for i in members:
        key = layers[i][depth][0] if depth < len(layers[i]) else None
        groups.setdefault(key, []).append(i)
    for key, group in groups.items():
        if key is None:  # these paths end here: the head, recalibrated on their own calibration activations
            _, logits = _run(net, net.forward_head, calib, held)
            hits = sum(int((z[skip:].argmax(1) == y).sum()) for z, (_, skip, y) in zip(logits, scorer._windows))
            correct[group] = hits
            continue
        layer = layers[group[0]][depth][1]
        next_calib, next_held = _run(net, layer, calib, held)
        _walk(net, scorer, layers, group, depth + 1, next_calib, next_held, correct)
