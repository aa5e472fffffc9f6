"""The genotype's activation reaches every network effnas builds from it: the proxy, ``nas train``, the supernet.

(The ONNX export of A1 is tested in tests/test_export.py; the builder in tests/test_zoo.py.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch.nn as nn

from nas.data import DataConfig, load_data
from nas.experiment.proxy import ProxyConfig
from search_spaces import SearchSpace, get_space, named_genotype


def _activations(model: nn.Module) -> set[type]:
    kinds = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Sigmoid)
    return {type(m) for m in model.modules() if isinstance(m, kinds)}


def test_the_proxy_trains_mnasnet_a1_as_a_relu_network(monkeypatch):
    import nas.proxy.train as proxy_train

    built = []

    def recording(spec, **kwargs):
        model = proxy_train.build_model.__wrapped__(spec, **kwargs)
        built.append(model)
        return model

    recording.__wrapped__ = proxy_train.build_model
    monkeypatch.setattr(proxy_train, "build_model", recording)
    cfg = ProxyConfig(epochs=1, batch_size=64, eval_batch_size=64, width=0.25, depth=0.25, stem_stride=2,
                      device="cpu")
    outcome = proxy_train.train_proxy(named_genotype("mnasnet-a1"), cfg, load_data(DataConfig(train_limit=64,
                                                                                               holdout=32)))
    assert outcome.status == "ok", outcome
    (model,) = built
    assert nn.ReLU in _activations(model) and nn.SiLU not in _activations(model)


def test_nas_train_builds_lite0_with_relu6(tmp_path):
    from efficientnet import build_model
    from train_helpers import tiny_job

    job = dataclasses.replace(tiny_job(tmp_path), genotype=named_genotype("efficientnet-lite0").to_string())
    assert job.spec(10).genotype.frame.activation == "relu6"  # the string carries it to the worker
    kinds = _activations(build_model(job.spec(10)))
    assert nn.ReLU6 in kinds and nn.SiLU not in kinds


def test_the_supernet_of_a_relu6_space_extracts_relu6_paths():
    from efficientnet.supernet import Supernet

    declaration = get_space("tiny").to_declaration()
    declaration["frame"] = dict(declaration.get("frame") or {}, activation="relu6")
    space = SearchSpace(declaration)
    net = Supernet(space, width=0.25, depth=1.0, resolution=16, stem_stride=2, num_classes=10)
    g = space.sample(np.random.default_rng(0))
    assert g.frame.activation == "relu6"
    kinds = _activations(net.extract(g))
    assert nn.ReLU6 in kinds and nn.SiLU not in kinds
