"""The README's "Declare your own space" example is a working declaration with the numbers the README states."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from search_spaces import load_space, network_key

README = Path(__file__).resolve().parents[1] / "README.md"


def _section() -> str:
    text = README.read_text()
    return text[text.index("### Declare your own space"):text.index("## Proxy task")]


def test_the_readme_example_loads_and_says_what_it_is(tmp_path):
    section = _section()
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "my_space.yaml").write_text(yaml_text)
    space = load_space("my_space.yaml", base_dir=tmp_path)
    assert space.name == "my-space"
    assert space.cardinality == 8 * 27 * 27 * 4 == 23_328 and "23,328" in section
    assert space.decision_names[:4] == ["b1_op", "b1_kernel", "b1_layers", "b2_op"]
    assert str(space.decision_names[:4]).replace('"', "'") in section
    g = space.sample(np.random.default_rng(2))
    text = g.to_string()
    assert text.startswith("stem24_s1,") and text.endswith(",head1024_fixed,act_relu6")
    shown = re.search(r"g.to_string\(\)\s+# '([^']*)'", section).group(1)
    head, tail = shown.split("...")
    assert text.startswith(head) and text.endswith(tail)
    # the ops the example names build what its table says: fused first, then layer-wise MBConv or skip
    assert set(space.positions[0].values("op")) == {"fused"}
    assert [p.stride for p in space.positions] == [1, 2, 1, 1, 2, 1, 1, 1]
    assert space.positions[1].decisions[0].options[0]["kernel"] == 1  # {op: skip} completed by its pins
    skip_all = space.decode([0, 0, 0] + [0] * 6 + [0, 0])
    assert len(network_key(skip_all)[1]) == 1 + 2 + 1  # fused, two strided 1x1 skips, the last block
    assert load_space(space.to_declaration()) == space


def test_the_readme_error_example_is_the_real_message():
    from search_spaces import SearchSpace

    section = " ".join(_section().split())
    declaration = {"name": "t", "stages": [{"stride": 1, "filters": 16, "decisions": {
        "op": [{"op": "nodw", "expand": 6}, {"op": "mbconv", "expand": 6}], "se": [0.0, 0.25]}}]}
    try:
        SearchSpace(declaration)
    except ValueError as err:
        assert f"`{err}`" in section
    else:
        raise AssertionError("the declaration should be refused")
