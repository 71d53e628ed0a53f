"""The shape of the package: no import cycle, imports point down the layers, short functions.

The layers are described in docs/architecture.md. Every import is counted, also those made inside
functions (they hide cycles from the interpreter, not from readers).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "trialkit"

# Layers, lowest first: a module may import its own layer and the ones below it.
LAYERS = {
    "base": ("trialkit.errors", "trialkit.constants", "trialkit.stats", "trialkit.results",
             "trialkit.plotting", "trialkit.tables"),
    "design": ("trialkit.design",),
    "engine": ("trialkit.engine", "trialkit.simulate"),
    "domain": ("trialkit.randomise", "trialkit.factorial", "trialkit.mrt", "trialkit.adaptive",
               "trialkit.bayes"),
    "study": ("trialkit.study",),
    "service": ("trialkit.service",),
    "interfaces": ("trialkit.cli", "trialkit.server", "trialkit.__main__", "trialkit"),
}
RANK = {name: i for i, name in enumerate(LAYERS)}
# Domain packages stand side by side; the only one another builds on: the Bayesian analysis uses
# the factorial model (terms, model matrices, assumed truth).
DOMAIN_USES = {("trialkit.bayes", "trialkit.factorial")}

MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Modules of trialkit that module ``name`` imports (anywhere in its code)."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> tuple[str, str]:
    """(layer, package prefix) of ``module``: the longest matching prefix wins."""
    best = ("", "")
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best[1]):
                best = (layer, p)
    return best


def _cycles() -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read():
    assert len(MODULES) > 50
    assert "trialkit.adaptive.look" in GRAPH["trialkit.adaptive.simulator"]
    assert "trialkit.stats" in GRAPH["trialkit.bayes.plots"]  # a function-local import counts


def test_no_import_cycle():
    assert _cycles() == []


def test_every_module_has_a_layer():
    assert [m for m in MODULES if not _layer(m)[0]] == []


def _violations() -> list[str]:
    bad = []
    for src, targets in GRAPH.items():
        layer, pkg = _layer(src)
        for dst in targets:
            dst_layer, dst_pkg = _layer(dst)
            if dst_pkg == pkg:
                continue
            if RANK[dst_layer] > RANK[layer]:
                bad.append(f"{src} ({layer}) imports {dst} ({dst_layer})")
            elif layer == dst_layer == "domain" and (pkg, dst_pkg) not in DOMAIN_USES:
                bad.append(f"{src} imports the other domain package {dst}")
    return sorted(bad)


def test_imports_point_down_the_layers():
    assert _violations() == []


def test_the_direction_check_can_fail(monkeypatch):
    monkeypatch.setitem(GRAPH, "trialkit.stats", {"trialkit.cli._common"})
    monkeypatch.setitem(GRAPH, "trialkit.mrt.plots", {"trialkit.adaptive.look"})
    assert _violations() == [
        "trialkit.mrt.plots imports the other domain package trialkit.adaptive.look",
        "trialkit.stats (base) imports trialkit.cli._common (interfaces)"]


def _functions():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    owner = node.name + "." if isinstance(node, ast.ClassDef) else ""
                    yield f"{name}:{owner}{child.name}", child.end_lineno - child.lineno + 1


@pytest.mark.parametrize("limit", [MAX_FUNCTION_LINES])
def test_no_function_over_60_lines(limit):
    long = {f"{q} ({n} lines)" for q, n in _functions() if n > limit}
    assert sorted(long) == []
