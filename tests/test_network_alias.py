"""The scale-aware network key (``ProxyConfig.network_key``) and verification's "distinct" (issue 19).

Two genotypes that build the same proxy network are one candidate: the space's own aliases (``skip``
where no residual exists) and, at the proxy's depth multiplier, layer counts that round to one depth.
"""

from __future__ import annotations

import dataclasses

from nas.experiment.proxy import ProxyConfig
from nas.search.verify import alias_count, top_genotypes
from search_spaces import Genotype, get_space, network_key


def _tiny_pair():
    """Two tiny genotypes differing only in block 2's layers (1 vs 2)."""
    space = get_space("tiny")
    codes = [0] * len(space.decision_sizes)
    i = space.decision_names.index("b2_layers")
    a = space.decode(codes)
    codes[i] = 1
    return a, space.decode(codes)


def test_layer_counts_that_round_to_one_depth_are_one_network_at_the_proxy_depth_only():
    one, two = _tiny_pair()
    assert [b.layers for b in one.blocks][1] == 1 and [b.layers for b in two.blocks][1] == 2
    assert network_key(one) != network_key(two)  # different networks at depth 1.0
    half, full = ProxyConfig(depth=0.5, width=0.25), ProxyConfig(depth=1.0, width=0.25)
    assert half.network_key(one) == half.network_key(two)  # ceil(0.5 * 1) == ceil(0.5 * 2) == 1
    assert full.network_key(one) != full.network_key(two)
    assert half.network_key(one.to_string()) == half.network_key(one)  # trials.jsonl strings parse


def test_noskip_where_no_residual_exists_is_an_alias_at_any_scale():
    space = get_space("tiny")
    g = space.decode([0] * len(space.decision_sizes))
    blocks = list(g.blocks)
    strided = 1  # block 2 has stride 2: no residual whatever its skip flag says
    other = dataclasses.replace(g, blocks=tuple(dataclasses.replace(b, skip=not b.skip) if i == strided else b
                                                for i, b in enumerate(blocks)))
    assert other != g and ProxyConfig().network_key(other) == ProxyConfig().network_key(g)


def _row(index: int, genotype: Genotype, reward: float) -> dict:
    return {"index": index, "genotype": genotype.to_string(), "reward": reward, "status": "ok"}


def test_verification_picks_distinct_networks_and_counts_aliases():
    one, two = _tiny_pair()
    space = get_space("tiny")
    third = space.sample(__import__("numpy").random.default_rng(3))
    rows = [_row(0, one, 0.9), _row(1, two, 0.8), _row(2, third, 0.5)]
    key = ProxyConfig(depth=0.5).network_key
    assert key(third) != key(one)
    assert [r["genotype"] for r in top_genotypes(rows, 2)] == [one.to_string(), two.to_string()]  # strings
    picked = top_genotypes(rows, 2, key)
    assert [r["genotype"] for r in picked] == [one.to_string(), third.to_string()]  # #2 was #1's alias
    assert alias_count(rows, key) == 1 and alias_count(rows, ProxyConfig(depth=1.0).network_key) == 0


def _experiment(tmp_path, **sections):
    from nas.experiment.search import load_experiment
    from search_helpers import small

    return load_experiment(data=small(tmp_path, **sections))


def test_the_controllers_no_repeat_rule_uses_the_network_the_evaluator_scores(tmp_path):
    """Proxy training and the supernet score the proxy-scale network: at depth 0.5, layer counts 1 and 2 are
    one candidate and a controller never proposes the second.  A table scores the space's network as it is."""
    from nas.experiment.search import build_controller

    one, two = _tiny_pair()
    half = _experiment(tmp_path, proxy={"depth": 0.5}, controller={"name": "random", "seed": 0})
    assert half.network_key(one) == half.network_key(two)
    controller = build_controller(half)
    controller.add_evaluated(one, 0.5)
    assert controller._seen(two)  # the alias of a told network is seen
    asked = []
    for _ in range(40):
        g = controller.ask()
        asked.append(g)
        controller.tell(g, 0.5)
    assert len({half.network_key(g) for g in asked}) == len(asked)
    assert half.network_key(one) not in {half.network_key(g) for g in asked}
    full = _experiment(tmp_path, controller={"name": "random", "seed": 0})
    assert full.network_key(one) != full.network_key(two)
    table = _experiment(tmp_path, space="nas-bench-macro", proxy={"depth": 0.5},
                        evaluator={"kind": "table", "table": "nas-bench-macro"},
                        objective={"cost": "macs", "target": 57.6e6, "w": -0.07})
    g = table.search_space.decode([0] * 8)
    assert table.network_key(g) == network_key(g) and build_controller(table).key(g) == network_key(g)


def test_the_verification_plan_trains_a_network_once_across_arms_and_the_reference(tmp_path):
    """Both arms' best and the reference can be aliases of one network (other strings): one entry, all roles."""
    import json

    from nas.search.verify import verification_plan

    one, two = _tiny_pair()
    third = get_space("tiny").sample(__import__("numpy").random.default_rng(3))
    (tmp_path / "baseline").mkdir()
    for folder, rows in ((tmp_path, [_row(0, one, 0.9), _row(1, third, 0.5)]),
                         (tmp_path / "baseline", [_row(0, two, 0.8)])):
        (folder / "trials.jsonl").write_text("".join(json.dumps({**r, "trial_id": str(r["index"])}) + "\n"
                                                     for r in rows))
    key = ProxyConfig(depth=0.5).network_key
    plan = verification_plan(tmp_path, 1, one.to_string(), key)
    assert len(plan) == 1 and plan[0]["genotype"] == one.to_string(), plan
    assert plan[0]["roles"] == ["search #1", "baseline #1", "reference"]
    assert plan[0]["search_reward"] == {"search": 0.9, "baseline": 0.8} and plan[0]["name"] == one.to_string()
    by_string = verification_plan(tmp_path, 1, None)
    assert [e["genotype"] for e in by_string] == [one.to_string(), two.to_string()]  # no key: strings differ
