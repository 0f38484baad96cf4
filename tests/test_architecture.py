"""ARCHITECTURE.md's rules, checked on the code: which floor imports which, no import circle
(imports inside functions included), no module over 600 lines."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "neurostat"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path):
    """Every neurostat module ``path`` imports, at any depth of its code."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("neurostat")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("neurostat"):
                continue
            out.add(mod)
            for alias in node.names:  # "from . import x" may name a submodule
                out.add(f"{mod}.{alias.name}")
    return out


def _graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules and m != name}
    return graph


GRAPH = _graph()


def _floor(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "neurostat"


@pytest.mark.parametrize("floor, forbidden", [
    ("engine", {"estimators", "inference", "survival", "ppr", "gp", "dropout", "regularization",
                "selection", "plotting", "demo", "datasets", "distributed"}),
    ("inference", {"estimators", "survival", "ppr", "gp", "dropout", "regularization",
                   "selection", "plotting", "demo", "distributed"}),
    ("_utils", {"engine", "estimators", "inference", "survival", "ppr", "gp"}),
])
def test_floors_import_only_downwards(floor, forbidden):
    bad = sorted((a, b) for a, deps in GRAPH.items() if _floor(a) == floor
                 for b in deps if _floor(b) in forbidden)
    assert not bad, f"{floor} imports from a floor above it: {bad}"


def test_no_import_circle():
    # a package's __init__ importing its own submodules is not a circle of the code
    graph = {a: {b for b in deps if not (a.count(".") < b.count(".") and b.startswith(a + "."))}
             for a, deps in GRAPH.items()}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, f"import circles: {cycles}"


def test_no_module_over_600_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines: {long}"


def test_the_graph_sees_deferred_imports():
    # the estimators' statistics mixin imports inference inside a method: the graph must see it
    assert "neurostat.inference" in GRAPH["neurostat.estimators._statistics"]
