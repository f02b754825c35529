"""Rules that keep the code base in shape: lint clean, data flows one way, no import cycle, small modules.

* ruff (lint + import order, configured in pyproject.toml) finds nothing in omicsdata/ zoo/ scripts/ tests/;
* ``omicsdata`` never imports ``zoo`` (every import statement, also inside functions);
* the import graph of the project's own modules (module level AND inside functions,
  relative imports resolved; ``if TYPE_CHECKING:`` blocks skipped) has no cycle;
* no module under omicsdata/ or zoo/ is over ``MAX_LINES`` lines.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("omicsdata", "zoo")
MAX_LINES = 420  # "no module over ~400 lines" (issue 11); the largest today are ~416


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the project's import packages."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom node, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if _is_type_checking(node):
            children = list(node.orelse)
        stack.extend(children)


def imported_names(module: str, path: Path) -> list[tuple[str, int]]:
    """The absolute dotted names imported by ``module`` (``from a import b`` gives ``a.b``), with line numbers."""
    is_package = path.name == "__init__.py"
    out = []
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
            continue
        if node.level:
            base_parts = module.split(".") if is_package else module.split(".")[:-1]
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        out.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return out


def import_graph() -> dict[str, set[str]]:
    """Edges module -> project module it imports (the longest project module prefix of each imported name)."""
    modules = module_files()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in imported_names(module, path):
            parts = name.split(".")
            target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1)
                           if ".".join(parts[:i]) in modules), None)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path a -> ... -> a) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan, recursive: the graph is a few hundred modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return [_cycle_in(graph, comp) for comp in components]


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the smallest-named module of a strongly connected component (BFS)."""
    start = min(comp)
    parents = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
            if w not in parents:
                parents[w] = v
                queue.append(w)
    return sorted(comp)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff is in the test extras: pip install -e '.[test]'")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "omicsdata", "zoo", "scripts", "tests"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"ruff check found problems (fix or `ruff check --fix`):\n{res.stdout}{res.stderr}"


def test_omicsdata_never_imports_zoo():
    bad = []
    for module, path in module_files().items():
        if not module.startswith("omicsdata"):
            continue
        bad += [f"{path.relative_to(REPO)}:{line}: imports {name}" for name, line in imported_names(module, path)
                if name == "zoo" or name.startswith("zoo.")]
        for node in ast.walk(ast.parse(path.read_text())):  # importlib.import_module("zoo...") counts too
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
                    ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)
                    and str(node.args[0].value).split(".")[0] == "zoo"):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: imports {node.args[0].value}")
    assert not bad, "omicsdata must not import zoo (data flows one way):\n" + "\n".join(bad)


def test_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_over_the_line_limit():
    big = {str(p.relative_to(REPO)): n for p in module_files().values()
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by job): " + ", ".join(
        f"{k} ({v})" for k, v in sorted(big.items(), key=lambda kv: -kv[1]))


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    """The graph helpers themselves: a cycle through a function-level relative import is found."""
    graph = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": set()}
    assert find_cycles(graph) == [["p.a", "p.b", "p.a"]]
    (tmp_path / "m.py").write_text("def f():\n    from ..x import y\n    import zoo.models\n"
                                   "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import z\n")
    assert imported_names("omicsdata.sub.m", tmp_path / "m.py") == [
        ("typing.TYPE_CHECKING", 4), ("zoo.models", 3), ("omicsdata.x.y", 2)]
