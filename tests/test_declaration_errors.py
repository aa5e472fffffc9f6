"""Strict loading of space declarations: every mistake is one line naming the YAML path and the fix."""

from __future__ import annotations

import copy

import pytest

from search_spaces import DeclarationError, SearchSpace, load_space

BASE = {"name": "t", "stages": [{"stride": 1, "filters": 16, "decisions": {
    "op": [{"op": "mbconv", "expand": 1}, {"op": "mbconv", "expand": 6}], "kernel": [3, 5]}}]}


def _with(path: str, value: object) -> dict:
    """BASE with the value at a dotted path (``stages.0.decisions.kernel``) set; ``...`` deletes it."""
    out = copy.deepcopy(BASE)
    *head, last = path.split(".")
    node = out
    for key in head:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    key = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return out


S = "stages.0"
D = "stages.0.decisions"
NODW = {"op": "nodw", "expand": 6}


def _special(name: str) -> dict:
    d = copy.deepcopy(BASE)
    stage = d["stages"][0]
    if name == "pin against another decision":
        stage["decisions"] = {"op": [NODW, {"op": "mbconv", "expand": 6}], "se": [0.0, 0.25]}
    elif name == "pin against the stage":
        stage["se"], stage["decisions"] = 0.25, {"op": [NODW, {"op": "mbconv", "expand": 6}]}
    elif name == "fixed op against a decision":
        stage["op"], stage["decisions"] = "conv", {"expand": [1, 6]}
    elif name == "fixed op against the stage":
        stage.update(op="skip", kernel=3, decisions={})
    elif name == "per-layer layers decision":
        stage.update(per="layer", decisions={"layers": [1, 2]})
    elif name == "per-layer layers in an option":
        stage.update(per="layer", decisions={"op": [{"op": "mbconv", "layers": 2}]})
    return d


CASES = [
    # (what is wrong, declaration, YAML path named, the fix or rule in the message)
    ("unknown top key", {**BASE, "stagse": []}, "stagse", "allowed: name, source, description, frame, defaults"),
    ("no name", {"stages": BASE["stages"]}, "name", "e.g. name: my-space"),
    ("name not a word", {**BASE, "name": "my space"}, "name", "a word of letters"),
    ("not a mapping", ["stages"], "", "a space declaration must be a mapping"),
    ("source not text", {**BASE, "source": 3}, "source", "free text"),
    ("frame unknown key", _with("frame.stems", 16), "frame.stems", "allowed: stem, head"),
    ("frame wrong type", _with("frame.stem", "32"), "frame.stem", "positive integer"),
    ("unknown activation", _with("frame.activation", "gelu"), "frame.activation", "silu, relu, relu6, hswish"),
    ("bad se activation", _with("frame.se_activation", "tanh"), "frame.se_activation", "or null"),
    ("bad stem stride", _with("frame.stem_stride", 4), "frame.stem_stride", "use one of 1, 2"),
    ("bad head scaling", _with("frame.head_scaling", "down"), "frame.head_scaling", "scaled, fixed, up"),
    ("defaults unknown key", _with("defaults.strides", 2), "defaults.strides", "allowed: op, kernel, expand"),
    ("defaults wrong type", _with("defaults.skip", "yes"), "defaults.skip", "true or false"),
    ("no stages", {"name": "t", "stages": []}, "stages", "at least one stage"),
    ("stages missing", {"name": "t"}, "stages", "at least one stage"),
    ("stages not a list", {"name": "t", "stages": {"stride": 1}}, "stages", "a list of stage mappings"),
    ("stage not a mapping", {"name": "t", "stages": [3]}, "stages[0]", "a stage must be a mapping"),
    ("stage missing stride", _with(f"{S}.stride", ...), "stages[0]", "needs a stride, e.g. stride: 2"),
    ("stage unknown key", _with(f"{S}.kernels", [3]), "stages[0].kernels", "a layer field, stride, per or decisions"),
    ("stride not a number", _with(f"{S}.stride", "2"), "stages[0].stride", "positive integer"),
    ("per unknown", _with(f"{S}.per", "block"), "stages[0].per", "'stage'"),
    ("no filters", _with(f"{S}.filters", ...), "stages[0]", "fix them (filters: 24) or decide them"),
    ("decisions not a mapping", _with(f"{D}", [3, 5]), "stages[0].decisions", "decisions must be a mapping"),
    ("options not a list", _with(f"{D}.kernel", 3), "stages[0].decisions.kernel", "options must be a list"),
    ("empty option list", _with(f"{D}.kernel", []), "stages[0].decisions.kernel", "empty option list"),
    ("duplicate option", _with(f"{D}.kernel", [3, 3]), "stages[0].decisions.kernel[1]", "repeats option 0"),
    ("duplicate once pinned", _with(D, {"op": [{"op": "skip"}, {"op": "skip", "kernel": 1}]}),
     "stages[0].decisions.op[1]", "repeats option 0"),
    ("even kernel", _with(f"{D}.kernel", [3, 4]), "stages[0].decisions.kernel[1]", "kernel must be odd"),
    ("se out of range", _with(f"{D}.se", [0.0, 1.5]), "stages[0].decisions.se[1]", "ratio in [0, 1]"),
    ("skip not a bool", _with(f"{D}.skip", ["yes"]), "stages[0].decisions.skip[0]", "true or false"),
    ("unknown op", _with(f"{D}.op", [{"op": "sepconv"}]), "stages[0].decisions.op[0].op",
     "unknown op 'sepconv'; ops: mbconv, nodw, conv, irpw, fused, skip"),
    ("option unknown key", _with(f"{D}.op", [{"op": "mbconv", "expnd": 6}]), "stages[0].decisions.op[0].expnd",
     "an option sets layer fields: op, kernel"),
    ("empty option", _with(f"{D}.op", [{}]), "stages[0].decisions.op[0]", "set at least one field"),
    ("mixed scalar and mapping", _with(f"{D}.kernel", [3, {"kernel": 5}]), "stages[0].decisions.kernel[1]",
     "write every option as a mapping"),
    ("scalar options, not a field", _with(f"{D}.block", [1, 2]), "stages[0].decisions.block",
     "its name must be the field it sets"),
    ("bad decision name", _with(f"{D}.Op", [{"op": "mbconv"}]), "stages[0].decisions.Op", "a lowercase word"),
    ("stride decided", _with(f"{D}.stride", [1, 2]), "stages[0].decisions.stride", "stride is the stage's"),
    ("stride in an option", _with(f"{D}.op", [{"op": "mbconv", "stride": 2}]), "stages[0].decisions.op[0].stride",
     "stride is the stage's"),
    ("field set by two decisions", _with(f"{D}.op", [{"op": "mbconv", "kernel": 3}, {"op": "fused", "kernel": 3}]),
     "stages[0].decisions.kernel", "also set by decision 'op'"),
    ("decision and fixed value", _with(f"{S}.kernel", 3), "stages[0].decisions.kernel",
     "also fixed by stages[0].kernel; remove one"),
    ("op cannot take the field", _with(f"{D}.op", [{"op": "conv", "expand": 6}]), "stages[0].decisions.op[0].expand",
     "op conv has expand fixed at 1, got 6; a regular conv has no expansion; drop expand from this option"),
    ("skip cannot take a kernel", _with(D, {"op": [{"op": "skip", "kernel": 3}]}), "stages[0].decisions.op[0].kernel",
     "op skip has kernel fixed at 1"),
    ("pin against another decision", _special("pin against another decision"), "stages[0].decisions.op[0]",
     "but decision 'se' (stages[0].decisions.se) sets se for every op; tie se into the options"),
    ("pin against the stage", _special("pin against the stage"), "stages[0].decisions.op[0]",
     "fixes it at 0.25; move se into the options"),
    ("fixed op against a decision", _special("fixed op against a decision"), "stages[0].decisions.expand[1]",
     "op conv (stages[0].op) has expand fixed at 1; remove this option"),
    ("fixed op against the stage", _special("fixed op against the stage"), "stages[0].kernel",
     "op skip (stages[0].op) has kernel fixed at 1"),
    ("per-layer layers decision", _special("per-layer layers decision"), "stages[0].decisions.layers",
     "layers cannot be decided per layer"),
    ("per-layer layers in an option", _special("per-layer layers in an option"), "stages[0].decisions.op[0].layers",
     "give the count as stages[0].layers"),
    ("not a YAML value", _with(f"{S}.filters", {1, 2}), "stages[0].filters", "not a YAML scalar"),
]


@pytest.mark.parametrize("what, declaration, path, fix", CASES, ids=[c[0] for c in CASES])
def test_each_mistake_names_its_yaml_path_and_fix(what, declaration, path, fix):
    with pytest.raises(DeclarationError) as info:
        SearchSpace(declaration)
    err = info.value
    message = str(err)
    assert isinstance(err, ValueError) and "\n" not in message
    assert err.path == path, (what, message)
    assert message.startswith(f"{path}: " if path else err.problem), message
    assert fix in message, (what, message)


def test_the_error_table_covers_the_issue_list():
    """Issue 19's list: unknown key, wrong type, empty option list, duplicate option, a field set by two decisions
    (or a decision and a fixed value), an op that cannot take a field, unknown op/activation, mixed options, a
    per-layer layers decision, no stages."""
    names = {c[0] for c in CASES}
    assert {"unknown top key", "frame wrong type", "empty option list", "duplicate option", "field set by two "
            "decisions", "decision and fixed value", "op cannot take the field", "unknown op", "unknown activation",
            "mixed scalar and mapping", "per-layer layers decision", "no stages"} <= names


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("name: t\nstages:\n  - stride: 1\n    filters: 16\n    decisions:\n"
                    "      op: [{op: nodw, expand: 6}, {op: mbconv, expand: 6}]\n      se: [0.0, 0.25]\n")
    with pytest.raises(DeclarationError) as info:
        load_space(path)
    assert str(info.value).startswith(f"{path}: stages[0].decisions.op[0]: op nodw has se fixed at 0.0")
    assert info.value.file == str(path) and info.value.path == "stages[0].decisions.op[0]"
