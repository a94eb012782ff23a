"""The package's import graph: no cycles, and dependencies point one way (issue 11 item 3):
core <- metrics / data / models <- train <- evaluate <- reproduce <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "bayesncl"

#: layer of each top-level part; a module may import only from its own layer or below
LAYERS = {
    "_argv": 0,
    "_output": 0,
    "core": 0,
    "resources": 0,
    "metrics": 1,
    "data": 1,
    "theory": 1,
    "configs": 0,
    "models": 1,
    "train": 2,
    "evaluate": 3,
    "export": 4,
    "browse": 4,
    "reproduce": 4,
    "cli": 5,
    "__init__": 5,
    "__main__": 5,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every bayesncl module imported anywhere in the file: function-local imports and imports
    under ``if TYPE_CHECKING:`` too (a cycle hidden from the interpreter is still one for a
    reader)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bayesncl")}
        elif (
            isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bayesncl")
        ):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PKG.rglob("*.py")}
    g = {}
    for name, path in files.items():
        # resolve "from pkg import module" to the module, drop names that are not modules
        g[name] = {m for m in imports_of(path) if m in files and m != name}
    return g


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_cycles():
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g[v]:
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
            # a package's __init__ re-exporting its own modules is not a cycle of code
            real = [m for m in comp if not (PKG / Path(*m.split(".")[1:]) / "__init__.py").exists()]
            if len(comp) > 1 and len(real) > 1:
                cycles.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    assert cycles == []


def test_dependencies_point_one_way():
    bad = []
    for module, deps in graph().items():
        for dep in deps:
            if LAYERS[part(dep)] > LAYERS[part(module)]:
                bad.append(f"{module} -> {dep}")
    assert bad == []


def test_core_has_no_lightning():
    for path in (PKG / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith(("lightning", "pytorch_lightning")) for n in names), (
                    path
                )
