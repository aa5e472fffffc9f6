"""Weight interop: load other EfficientNet implementations' state dicts into :class:`EfficientNet`.

Two sources, both the EfficientNet of Tan & Le 2019 (arXiv:1905.11946) with the
same layer order as ours (stem; per layer: expand 1x1, depthwise kxk, squeeze-
excite reduce/expand, project 1x1, each conv followed by its BatchNorm; head
1x1; classifier):

* lukemelas' EfficientNet-PyTorch (``efficientnet_pytorch.EfficientNet``), a
  port of the TensorFlow weights.  It pads like TensorFlow "SAME" (asymmetric:
  for stride 2 the extra row/column goes at the bottom/right) and uses
  BatchNorm eps 1e-3, momentum 0.01.  Our model must be built with
  ``same_padding=True, bn_eps=1e-3`` (:data:`LUKEMELAS_BUILD`) to give the same
  logits; with PyTorch's symmetric padding every stride-2 layer samples a grid
  shifted by one pixel and the logits differ by O(0.1-1) for random weights
  (bench/ and tests/test_interop.py measure it).
* torchvision's ``efficientnet_b0`` .. ``_b7``: symmetric padding; BatchNorm
  eps 1e-5, momentum 0.1 for B0..B4 (:data:`TORCHVISION_BUILD`) but eps 1e-3,
  momentum 0.01 for B5..B7, whose weights torchvision ported from TF
  (:func:`torchvision_build` gives either; :func:`from_torchvision` reads them
  off the model).

Tensors are mapped by position, not by name: the state-dict entries of both
models are zipped in order, and each pair must agree on its role (the last
name component: weight, bias, running_mean, running_var) and its shape, else a
ValueError names both entries.  Source dicts without ``num_batches_tracked``
(older exports) are accepted; ours keep their own counters then.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from typing import Mapping

import torch
from torch import nn

from search_spaces import BlockGene, Genotype

from .blocks import Conv2dSame
from .model import EfficientNet, ModelSpec, build_model

log = logging.getLogger(__name__)

#: Build settings under which our model reproduces lukemelas' logits.
LUKEMELAS_BUILD = {"same_padding": True, "bn_eps": 1e-3, "bn_momentum": 0.01}
#: Build settings under which our model reproduces torchvision's efficientnet_b0..b4 logits.
TORCHVISION_BUILD = {"same_padding": False, "bn_eps": 1e-5, "bn_momentum": 0.1}
#: torchvision builds B5..B7 with TF's BatchNorm settings (its weights for them are TF ports).
_TORCHVISION_TF_BN = ("efficientnet-b5", "efficientnet-b6", "efficientnet-b7")
_TORCHVISION_MODELS = tuple(f"efficientnet-b{i}" for i in range(8))

_COUNTER = "num_batches_tracked"


def load_lukemelas_state_dict(model: EfficientNet, state_dict: Mapping[str, torch.Tensor],
                              check_build: bool = True) -> None:
    """Copy a lukemelas ``EfficientNet`` state dict into ``model`` (same genotype, width, depth, classes).

    ``check_build`` (default) raises unless ``model`` was built with :data:`LUKEMELAS_BUILD`
    padding and eps; pass False to load anyway (the logits then differ).
    """
    if check_build:
        _check_build(model, "lukemelas' EfficientNet-PyTorch", LUKEMELAS_BUILD)
    _load_by_position(model, state_dict, "lukemelas")


def torchvision_build(name: str) -> dict[str, object]:
    """The ``EfficientNet`` build settings matching torchvision's model ``name`` (``efficientnet-b5``)."""
    if name not in _TORCHVISION_MODELS:
        raise ValueError(f"torchvision has no model {name!r}; known: {', '.join(_TORCHVISION_MODELS)}")
    if name in _TORCHVISION_TF_BN:
        return {"same_padding": False, "bn_eps": 1e-3, "bn_momentum": 0.01}
    return dict(TORCHVISION_BUILD)


def load_torchvision_state_dict(model: EfficientNet, state_dict: Mapping[str, torch.Tensor],
                                bn_eps: float = 1e-5, check_build: bool = True) -> None:
    """Copy a torchvision ``efficientnet_bN`` state dict into ``model`` built from the ``b0`` genotype.

    ``bn_eps`` is the source's BatchNorm eps (1e-5 for B0..B4, 1e-3 for B5..B7; a state dict does
    not record it).  ``check_build`` (default) raises unless ``model`` pads symmetrically and has that
    eps, e.g. ``create_model("efficientnet-b3", **torchvision_build("efficientnet-b3"))``.
    """
    if check_build:
        _check_build(model, "torchvision's efficientnet", {**TORCHVISION_BUILD, "bn_eps": bn_eps})
    _load_by_position(model, state_dict, "torchvision")


def from_torchvision(tv_model: nn.Module) -> EfficientNet:
    """Our :class:`EfficientNet` with the weights of a torchvision ``efficientnet_b0`` .. ``_b7``.

    The model is recognised by its classifier and parameter count among B0..B7 (the ``b0`` genotype
    at the official coefficients); BatchNorm eps/momentum are read off its modules.
    """
    from . import count_spec, model_spec

    classifier = [m for m in tv_model.modules() if isinstance(m, nn.Linear)]
    if len(classifier) != 1:
        raise ValueError(f"expected a torchvision EfficientNet with one Linear classifier, got {len(classifier)}")
    num_classes = classifier[0].out_features
    params = sum(p.numel() for p in tv_model.parameters())
    names = [n for n in _TORCHVISION_MODELS
             if count_spec(model_spec("b0", model=n, num_classes=num_classes))[0] == params]
    if not names:
        raise ValueError(f"a model with {params:,} parameters and {num_classes} classes is none of torchvision's "
                         "efficientnet_b0..b7")
    bn = next(m for m in tv_model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    model = build_model(model_spec("b0", model=names[0], num_classes=num_classes), same_padding=False,
                        bn_eps=bn.eps, bn_momentum=bn.momentum if bn.momentum is not None else 0.1)
    load_torchvision_state_dict(model, tv_model.state_dict(), bn_eps=bn.eps)
    model.train(tv_model.training)
    return model


def genotype_from_lukemelas(blocks_args) -> Genotype:
    """The genotype of lukemelas' unscaled ``BlockArgs`` list (``model._blocks_args``)."""
    blocks = []
    for i, args in enumerate(blocks_args, start=1):
        strides = args.stride if isinstance(args.stride, (list, tuple)) else [args.stride]
        if len(set(strides)) != 1:
            raise ValueError(f"lukemelas block {i}: unequal strides {strides} cannot be expressed; "
                             "a genotype block has one stride for both axes")
        blocks.append(BlockGene(op="mbconv", kernel=int(args.kernel_size), stride=int(strides[0]),
                                expand=int(args.expand_ratio), se=float(args.se_ratio or 0.0),
                                skip=bool(args.id_skip), filters=int(args.output_filters),
                                layers=int(args.num_repeat)))
    genotype = Genotype(tuple(blocks))
    first_in = int(blocks_args[0].input_filters)
    if first_in != 32:
        raise ValueError(f"lukemelas block 1 takes {first_in} input filters; ours follow a 32-filter stem")
    return genotype


def spec_from_lukemelas(lm_model: nn.Module) -> ModelSpec:
    """The :class:`ModelSpec` (genotype, width, depth, resolution, dropout, classes) of a lukemelas model."""
    gp = lm_model._global_params
    if gp.depth_divisor != 8 or gp.min_depth not in (None, 8):
        raise ValueError(f"lukemelas model rounds channels with depth_divisor={gp.depth_divisor}, "
                         f"min_depth={gp.min_depth}; only depth_divisor=8, min_depth=None is supported")
    genotype = genotype_from_lukemelas(lm_model._blocks_args)
    num_classes = gp.num_classes if gp.include_top else 0
    spec = ModelSpec(genotype, width=float(gp.width_coefficient), depth=float(gp.depth_coefficient),
                     resolution=int(gp.image_size if isinstance(gp.image_size, int) else gp.image_size[0]),
                     dropout=float(gp.dropout_rate), num_classes=int(num_classes))
    _check_lukemelas_residuals(spec)
    return spec


def from_lukemelas(lm_model: nn.Module) -> EfficientNet:
    """Our :class:`EfficientNet` with the architecture and weights of a lukemelas ``EfficientNet``."""
    gp = lm_model._global_params
    spec = spec_from_lukemelas(lm_model)
    model = build_model(spec, same_padding=True, bn_eps=float(gp.batch_norm_epsilon),
                        bn_momentum=1.0 - float(gp.batch_norm_momentum),
                        drop_connect_rate=float(gp.drop_connect_rate or 0.0))
    load_lukemelas_state_dict(model, lm_model.state_dict(), check_build=False)
    model.train(lm_model.training)
    return model


def to_layout(state_dict: Mapping[str, torch.Tensor], template: Mapping[str, torch.Tensor],
              target: str = "the target") -> "OrderedDict[str, torch.Tensor]":
    """Our state dict re-keyed into another implementation's layout (the inverse of the loaders above).

    ``template`` is the other model's own ``state_dict()`` (e.g. lukemelas' ``EfficientNet.from_name(...)``
    or torchvision's ``efficientnet_b0()``); tensors are matched by position under the same role and
    shape checks, and the result loads with ``load_state_dict(strict=True)``.  The other model must pad
    and normalise as ours was built (see :data:`LUKEMELAS_BUILD`, :func:`torchvision_build`) for the
    logits to agree.
    """
    mine, theirs = _entries(state_dict), _entries(template)
    if len(mine) != len(theirs):
        raise ValueError(f"{target} has {len(theirs)} tensors (not counting {_COUNTER}), the state dict has "
                         f"{len(mine)}: the architectures differ; build it with the same genotype, width, depth "
                         "and num_classes")
    out = OrderedDict((k, v.detach().clone()) for k, v in template.items())
    for i, ((key, tensor), (dst_key, dst)) in enumerate(zip(mine, theirs)):
        if key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1] or tuple(tensor.shape) != tuple(dst.shape):
            raise ValueError(f"tensor {i} {key!r} {tuple(tensor.shape)} does not fit {target}'s {dst_key!r} "
                             f"{tuple(dst.shape)}: the architectures differ")
        out[dst_key] = tensor.detach().to(dtype=dst.dtype).clone()
    return out


# -- internals -------------------------------------------------------------------

def _check_lukemelas_residuals(spec: ModelSpec) -> None:
    """lukemelas compares its first layer's stride (a list, ``[1]``) with ``1``, so the first layer of a
    stage never has a residual there; ours has one when stride is 1 and channels match.  Refuse those."""
    for i, stage in enumerate(spec.arch().stages, start=1):
        if stage.skip and stage.stride == 1 and stage.in_filters == stage.out_filters:
            raise ValueError(f"stage {i}: lukemelas' first layer has no residual when stride is 1 and "
                             f"in == out ({stage.in_filters}); ours has one, so the logits would differ")


def _check_build(model: nn.Module, source: str, build: Mapping[str, object]) -> None:
    strided = [m for m in model.modules()
               if isinstance(m, nn.Conv2d) and max(m.stride) > 1 and max(m.kernel_size) > 1]
    same = [isinstance(m, Conv2dSame) for m in strided]
    fits = all(same) if build["same_padding"] else not any(same)
    if not fits:  # (a model without strided kxk convs pads alike either way)
        raise ValueError(f"{source} weights expect same_padding={build['same_padding']}, but the model was built "
                         f"with same_padding={any(same)}; build it with "
                         f"{', '.join(f'{k}={v}' for k, v in build.items())} (or pass check_build=False)")
    eps = {m.eps for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    if any(not math.isclose(e, float(build["bn_eps"]), rel_tol=1e-6) for e in eps):
        raise ValueError(f"{source} weights expect BatchNorm eps={build['bn_eps']}, but the model has "
                         f"eps={sorted(eps)}; build it with bn_eps={build['bn_eps']} (or pass check_build=False)")


def _entries(state_dict: Mapping[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    return [(k, v) for k, v in state_dict.items() if k.rsplit(".", 1)[-1] != _COUNTER]


def _load_by_position(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    ours = model.state_dict()
    mine, theirs = _entries(ours), _entries(state_dict)
    if len(mine) != len(theirs):
        raise ValueError(f"{source} state dict has {len(theirs)} tensors (not counting {_COUNTER}), the model "
                         f"has {len(mine)}: the architectures differ; build the model from the same genotype, "
                         "width, depth and num_classes")
    new = OrderedDict(ours)
    for i, ((key, target), (src_key, tensor)) in enumerate(zip(mine, theirs)):
        role, src_role = key.rsplit(".", 1)[-1], src_key.rsplit(".", 1)[-1]
        if role != src_role or tuple(target.shape) != tuple(tensor.shape):
            raise ValueError(f"{source} tensor {i} {src_key!r} {tuple(tensor.shape)} does not fit the model's "
                             f"{key!r} {tuple(target.shape)}: the architectures differ; build the model from the "
                             "same genotype, width, depth and num_classes")
        new[key] = tensor.detach().to(dtype=target.dtype, device=target.device).clone()
    counters = [k for k in ours if k.rsplit(".", 1)[-1] == _COUNTER]
    src_counters = [v for k, v in state_dict.items() if k.rsplit(".", 1)[-1] == _COUNTER]
    if len(src_counters) == len(counters):
        for key, value in zip(counters, src_counters):
            new[key] = value.detach().clone().to(ours[key].device)
    model.load_state_dict(new, strict=True)
    log.debug("loaded %d tensors from a %s state dict", len(mine), source)
