"""The import graph of a package, read from its source, and the checks tests/test_layering.py
holds it to: layer rules, import cycles, and where driver packages may be imported.

Every `import` and `from … import` counts, wherever it is: at the top of a module, inside a
function, under ``if TYPE_CHECKING:``. `from a.b import c` is an import of the module ``a.b.c``
when the package has one, else of ``a.b``; relative imports are resolved against the importing
module. (An `importlib.import_module` call is not seen.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import NamedTuple


class Import(NamedTuple):
    target: str  # the dotted name of the module imported
    line: int


class Rule(NamedTuple):
    """Modules under `importers` import nothing under `forbidden` but what is under `unless`."""

    importers: str
    forbidden: tuple[str, ...]
    unless: tuple[str, ...] = ()


#: Graph: every module of the package (dotted name) -> what it imports, inside or outside it.
Graph = dict[str, list[Import]]


def under(name: str, prefix: str) -> bool:
    """`name` is the module `prefix` or one of its submodules."""
    return name == prefix or name.startswith(prefix + ".")


def modules(root: Path) -> dict[str, Path]:
    """The modules of the package at `root` (a directory named after it), by dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def graph(root: Path) -> Graph:
    """What each module of the package at `root` imports."""
    known = modules(root)
    # one edge per module a statement imports, however many names it takes from it
    return {
        name: list(dict.fromkeys(_imports(name, path, set(known)))) for name, path in known.items()
    }


def _imports(name: str, path: Path, known: set[str]) -> Iterable[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield Import(submodule if submodule in known else base, node.lineno)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def broken_rules(imports: Graph, rules: Iterable[Rule]) -> list[str]:
    """Each import a rule forbids, as ``importer:line imports target (rule: importers)``."""
    found = []
    for rule in rules:
        for importer, edges in sorted(imports.items()):
            if not under(importer, rule.importers):
                continue
            for edge in edges:
                if any(under(edge.target, f) for f in rule.forbidden) and not any(
                    under(edge.target, u) for u in rule.unless
                ):
                    found.append(
                        f"{importer}:{edge.line} imports {edge.target} (rule: {rule.importers})"
                    )
    return found


def misplaced_drivers(imports: Graph, drivers: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Each import of a driver package (its top-level name) outside the modules its patterns
    (fnmatch, on dotted names) allow, as ``importer:line imports target``."""
    found = []
    for importer, edges in sorted(imports.items()):
        for edge in edges:
            allowed = drivers.get(edge.target.split(".")[0])
            if allowed is not None and not any(fnmatchcase(importer, p) for p in allowed):
                found.append(f"{importer}:{edge.line} imports {edge.target}")
    return found


def cycles(imports: Graph) -> list[str]:
    """Each import cycle between the package's modules, as ``a -> b -> a`` (one shortest cycle
    per strongly connected component, from its first module by name)."""
    edges = {
        m: sorted({e.target for e in es if e.target in imports} - {m}) for m, es in imports.items()
    }
    found = []
    for component in _components(edges):
        start = min(component)
        found.append(" -> ".join(_shortest_cycle(start, edges, component)))
    return sorted(found)


def _components(edges: dict[str, list[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(edges[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _shortest_cycle(start: str, edges: dict[str, list[str]], component: set[str]) -> list[str]:
    """`start`, the modules of a shortest way back to it inside `component`, and `start`."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in edges[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if child in component and child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")
