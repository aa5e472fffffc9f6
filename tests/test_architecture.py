"""The house rules, read from the source: no import cycles, floors that import only downwards, Ray in one room,
the CLI on top, short functions.

The import graph is built from every ``import`` statement of the project's
packages (module level and inside functions alike: a lazy import is still a
dependency), ``from pkg import name`` counting as an import of ``pkg.name``
when that is a module and of ``pkg`` otherwise.  ``FLOORS`` is the house plan of
nas/ (the same list as ``nas/__init__.py``'s docstring): a room imports rooms on
lower floors and itself, never a room on its own floor or above.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("search_spaces", "efficientnet", "controllers", "nas")
#: The Ray room of nas/ (local start, Tune trials, the scoring-actor pool, Ray Train) and the Searcher adapter
#: of controllers/: the only modules allowed to import Ray.
RAY_ROOM = "nas.ray"
RAY_MODULES = {"nas.ray.local", "nas.ray.tune", "nas.ray.pool", "nas.ray.train", "nas.ray.supernet",
               "controllers.ray_searcher"}
CLI_PREFIXES = ("nas.cli", "nas.commands")
#: The rooms of nas/, lowest floor first; a module belongs to the room of its longest matching prefix.
FLOORS = [
    ("nas", "nas.config", "nas.files", "nas.errors", "nas.stats", "nas.cluster", "nas.export", "nas.progress"),
    ("nas.data",),
    ("nas.cost",),
    ("nas.experiment",),
    ("nas.proxy",),
    ("nas.supernet", "nas.train"),
    ("nas.evaluators",),
    ("nas.ray",),
    ("nas.search",),
    ("nas.cli", "nas.commands"),
]
#: The longest a function of nas/ may be (lines from ``def`` to its last line).
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports (project modules resolved; others by their top-level name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "__future__":
                continue
            subs = {f"{mod}.{a.name}" for a in node.names} & known
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(mod)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_project():
    graph = import_graph()
    assert {"nas.ray.tune", "nas.cost.target", "nas.cost.latency.lut", "controllers.ray_searcher",
            "efficientnet.layout"} <= set(graph)
    assert "nas.cost.target" in graph["nas.cost.latency.lut"]          # a relative import, resolved
    assert "nas.search.results" in graph["nas.search.scale_grid"]       # `from . import results`
    assert "ray" in graph["nas.ray.tune"]


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_ray_is_imported_only_inside_its_room_and_the_adapter():
    users = {m for m, deps in import_graph().items() if any(d == "ray" or d.startswith("ray.") for d in deps)}
    assert users == RAY_MODULES
    assert all(m.startswith(RAY_ROOM + ".") for m in RAY_MODULES if m.startswith("nas."))


def room_of(module: str) -> tuple[int, str] | None:
    """(floor, room) of a module of nas/, by the longest room prefix that matches it."""
    best = None
    for floor, rooms in enumerate(FLOORS):
        for room in rooms:
            if module == room or module.startswith(room + ".") and room != "nas":
                if best is None or len(room) > len(best[1]):
                    best = (floor, room)
    return best


def test_every_module_of_nas_has_a_room():
    homeless = [m for m in _modules() if m.startswith("nas") and room_of(m) is None]
    assert homeless == []


def test_room_finder():
    assert room_of("nas.config") == (0, "nas.config") and room_of("nas") == (0, "nas")
    assert room_of("nas.search.session") == (8, "nas.search") and room_of("nas.ray.tune") == (7, "nas.ray")
    assert room_of("nas.commands.search") == (9, "nas.commands") and room_of("nas.searching") is None


def test_no_room_of_nas_imports_its_own_floor_or_a_higher_one():
    """The data path runs one way: config and data at the bottom, the CLI on top."""
    offenders = []
    for module, deps in import_graph().items():
        mine = room_of(module)
        if mine is None:
            continue
        for dep in deps:
            theirs = room_of(dep)
            if theirs is None or theirs[1] == mine[1]:
                continue
            base = mine[0] == theirs[0] == 0  # the base floor's small modules lean on each other
            if theirs[0] > mine[0] or theirs[0] == mine[0] and not base:
                offenders.append(f"{module} ({mine[1]}, floor {mine[0]}) imports {dep} ({theirs[1]}, floor {theirs[0]})")
    assert offenders == []


def test_the_floor_check_catches_an_upward_import():
    graph = {"nas.data.datasets": {"nas.search.results"}, "nas.search.results": {"nas.data.datasets"}}
    ups = [(m, d) for m, deps in graph.items() for d in deps if room_of(d)[0] > room_of(m)[0]]
    assert ups == [("nas.data.datasets", "nas.search.results")]


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []
    for name, path in _modules().items():
        if not name.startswith("nas"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out.append(f"{name}.{node.name}: {lines} lines")
    return out


def test_no_function_of_nas_is_longer_than_60_lines():
    assert long_functions() == []
    assert long_functions(limit=5), "the length check sees the functions"


def test_no_library_module_imports_the_cli():
    graph = import_graph()
    offenders = {m: sorted(d for d in deps if d.startswith(CLI_PREFIXES))
                 for m, deps in graph.items() if not m.startswith(CLI_PREFIXES)}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_commands_define_no_dataclasses():
    """The CLI parses, calls the library and prints; schema lives in the library."""
    for name, path in _modules().items():
        if name.startswith(CLI_PREFIXES):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and any(
                "dataclass" in ast.unparse(d) for d in n.decorator_list)]
            assert classes == [], f"{name} defines schema {classes}; move it into the library"


def test_collecting_the_fast_set_imports_no_ray():
    """Plain ``pytest`` (no Ray tests) collects every test module without importing Ray.

    Running it is guarded by ``conftest.pytest_sessionfinish``, which fails a session that deselected the
    Ray tests and still imported Ray.
    """
    code = ("import sys, pytest; rc = pytest.main(['--collect-only', '-q', %r]); "
            "print('RAY-IMPORTED' if 'ray' in sys.modules else 'NO-RAY'); sys.exit(rc)" % str(ROOT / "tests"))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "NO-RAY"


@pytest.mark.parametrize("module", sorted(RAY_MODULES))
def test_ray_modules_exist(module):
    assert module in _modules()
