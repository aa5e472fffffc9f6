"""The house rules, read from the source: no import cycles, Ray in two modules, the CLI on top.

The import graph is built from every ``import`` statement of the project's
packages (module level and inside functions alike: a lazy import is still a
dependency), ``from pkg import name`` counting as an import of ``pkg.name``
when that is a module and of ``pkg`` otherwise.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("search_spaces", "efficientnet", "controllers", "nas")
#: The only modules allowed to import Ray: the drivers of nas/ (Tune trials; the scoring-actor pool; one way
#: to start or join Ray; Ray Train of `nas train` and of the supernet) and the adapter of controllers/.
RAY_MODULES = {"nas.driver", "nas.actor_pool", "nas.ray_local", "nas.train.ray_train", "nas.supernet.ray_train",
               "controllers.ray_searcher"}
CLI_PREFIXES = ("nas.cli", "nas.commands")


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
    assert {"nas.driver", "nas.cost.target", "nas.cost.latency.lut", "controllers.ray_searcher",
            "efficientnet.layout"} <= set(graph)
    assert "nas.cost.target" in graph["nas.cost.latency.lut"]          # a relative import, resolved
    assert "nas.search.results" in graph["nas.search.scale_grid"]       # `from . import results`
    assert "ray" in graph["nas.driver"]


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"a"}}) == [["a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(import_graph()) == []


def test_ray_is_imported_only_by_the_driver_and_the_adapter():
    users = {m for m, deps in import_graph().items() if any(d == "ray" or d.startswith("ray.") for d in deps)}
    assert users == RAY_MODULES


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
