"""Whether SQL is built only from constants: a static analysis of trackd/'s source.

`Constness` decides, for an expression, whether it is built only from constant fragments
(string literals, module constants, `len(…)`, and the locals, loop variables, appended items,
function results and parameters that are themselves built so, following every call site in the
package), so that every value reaches the database as a bound parameter. `sql_statements` finds
what to ask it about in a module: the statement of every `.execute`/`.executemany`/
`.executescript`/`.fetch*` call in a module that imports a SQL driver, and every SQL-looking
f-string, `%`, `+` or `.format` anywhere.

What may not be constant (a migration file's text, an identifier that cannot be bound) is the
caller's list: `Allowed`, keyed by (file, function, expression), with the reason each is safe.
tests/security/test_isolation.py holds trackd's list and the tests of the analysis.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "trackd"

SQL_METHODS = {"execute", "executemany", "executescript", "fetch", "fetchrow", "fetchval"}
DRIVERS = {"sqlite3", "asyncpg"}
SQL_WORDS = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH)\b", re.I)

#: What may go into SQL that is not built from constants, and why: (file, function,
#: expression) -> the reason.
Allowed = Mapping[tuple[str, str, str], str]


def package_trees() -> Iterator[tuple[str, ast.Module]]:
    """Every module of trackd/, parsed, with its path from the repository's root."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


Function = ast.FunctionDef | ast.AsyncFunctionDef
#: Expressions (each with the scope it is evaluated in); None: what they are cannot be known.
Exprs = list[tuple[ast.AST, "Scope"]] | None


def _each(parts: Exprs, step: Callable[[ast.AST, Scope], Exprs]) -> Exprs:
    """`step` of every part, flattened; None as soon as one is unknown."""
    if parts is None:
        return None
    found: list[tuple[ast.AST, Scope]] = []
    for node, scope in parts:
        got = step(node, scope)
        if got is None:
            return None
        found.extend(got)
    return found


@dataclass(eq=False)
class Scope:
    """A module, class or function body and its names' bindings: (kind, detail, scope)."""

    module: str  # dotted module name
    path: str
    qualname: str
    node: ast.AST
    parent: Scope | None
    bindings: dict[str, list[tuple[str, tuple[Any, ...], Scope]]] = field(default_factory=dict)

    def bind(self, name: str, kind: str, *detail: Any) -> None:
        self.bindings.setdefault(name, []).append((kind, detail, self))

    def lookup(self, name: str) -> list[tuple[str, tuple[Any, ...], Scope]] | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.bindings:
                return scope.bindings[name]
            scope = scope.parent
        return None


class Constness:
    """Decides whether an expression is built only from constant fragments: string literals,
    module constants, `len(…)`, and locals, loop variables, appended items, function results
    and parameters (through every call site in the package) that are themselves built so.
    Anything else (attributes, subscripts, other calls, unknown names) is not constant, unless
    `allowed` lists it (by file, function and expression) with the reason it is safe.

    It reads every module of trackd/ when made; `add` puts another module (a scratch one) in."""

    def __init__(self, allowed: Allowed) -> None:
        self.allowed = allowed
        self.functions: dict[tuple[str, str], tuple[Function, Scope]] = {}
        self.modules: dict[str, tuple[ast.Module, Scope]] = {}
        self.owner: dict[int, Scope] = {}  # id(node) -> the scope whose body holds it
        self.used: set[tuple[str, str, str]] = set()
        self._stack: set[tuple[int, int]] = set()
        self._depth = 0
        for path, tree in package_trees():
            self.add(path.removesuffix(".py").replace("/", "."), path, tree)

    def add(self, module: str, path: str, tree: ast.Module) -> Scope:
        top = Scope(module.removesuffix(".__init__"), path, "", tree, None)
        self.modules[top.module] = (tree, top)
        self._collect(tree, top)
        return top

    def scope_of(self, node: ast.AST) -> Scope:
        """The innermost function (or class, or the module) whose body holds `node`."""
        return self.owner[id(node)]

    # -- bindings ---------------------------------------------------------------------------

    def _collect(self, node: ast.AST, scope: Scope) -> None:
        for child in self._own_nodes(node):
            self.owner[id(child)] = scope
            if isinstance(child, Function):
                scope.bind(child.name, "def", child)
                qualname = f"{scope.qualname}.{child.name}".lstrip(".")
                inner = Scope(scope.module, scope.path, qualname, child, scope)
                args = [*child.args.posonlyargs, *child.args.args, *child.args.kwonlyargs]
                for index, arg in enumerate(args):
                    inner.bind(arg.arg, "param", child, index)
                if scope.parent is None or isinstance(scope.node, ast.ClassDef):
                    self.functions[(scope.module, child.name)] = (child, inner)
                self._collect(child, inner)
            elif isinstance(child, ast.ClassDef):
                self._collect(child, Scope(scope.module, scope.path, child.name, child, scope))
            else:
                self._bind(child, scope)

    @staticmethod
    def _own_nodes(node: ast.AST) -> Iterator[ast.AST]:
        """Nodes of `node`'s body, not descending into nested functions or classes."""
        todo = list(ast.iter_child_nodes(node))
        while todo:
            child = todo.pop()
            yield child
            if not isinstance(child, Function | ast.ClassDef):
                todo.extend(ast.iter_child_nodes(child))

    def _bind(self, node: ast.AST, scope: Scope) -> None:  # noqa: C901 (one case per node)
        match node:
            case ast.Assign(targets=targets, value=value):
                for target in targets:
                    self._bind_target(target, scope, "value", value)
            case (
                ast.AnnAssign(target=target, value=value)
                | ast.AugAssign(target=target, value=value)
                | ast.NamedExpr(target=target, value=value)
            ) if value is not None:
                self._bind_target(target, scope, "value", value)
            case (
                ast.For(target=target, iter=iterable)
                | ast.AsyncFor(target=target, iter=iterable)
                | ast.comprehension(target=target, iter=iterable)
            ):
                self._bind_target(target, scope, "item", iterable)
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr="append" | "insert")):
                scope.bind(name, "element", node.args[-1])  # type: ignore[attr-defined]
            case ast.Call(func=ast.Attribute(value=ast.Name(id=name), attr="extend"), args=[it]):
                scope.bind(name, "elements", it)
            case ast.Import(names=names) | ast.ImportFrom(names=names):
                for alias in names:
                    scope.bind((alias.asname or alias.name).split(".")[0], "import", node, alias)
            case ast.withitem(optional_vars=target) if target is not None:
                self._bind_target(target, scope, "opaque", target)
            case ast.ExceptHandler(name=str(name)) | ast.MatchAs(name=str(name)):
                scope.bind(name, "opaque")
            case ast.MatchStar(name=str(name)) | ast.MatchMapping(rest=str(name)):
                scope.bind(name, "opaque")
            case ast.Lambda(args=args):  # its parameters shadow: make the names unknowable
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    scope.bind(arg.arg, "opaque")

    def _bind_target(self, target: ast.AST, scope: Scope, kind: str, value: ast.AST) -> None:
        if isinstance(target, ast.Name):
            scope.bind(target.id, kind, value, None)
        elif isinstance(target, ast.Tuple | ast.List):
            starred = any(isinstance(e, ast.Starred) for e in target.elts)
            for index, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    element = element.value
                if isinstance(element, ast.Name):
                    scope.bind(element.id, "opaque" if starred else kind, value, index)

    # -- the decision -----------------------------------------------------------------------

    def constant(self, node: ast.AST, scope: Scope) -> bool:
        place = (scope.path, scope.qualname, ast.unparse(node))
        if place in self.allowed:
            self.used.add(place)
            return True
        key = (id(node), id(scope))
        if key in self._stack:
            return True  # a cycle adds nothing that is not constant
        self._stack.add(key)
        try:
            return self._constant(node, scope)
        finally:
            self._stack.discard(key)

    def _all(self, parts: Exprs) -> bool:
        return parts is not None and all(self.constant(node, scope) for node, scope in parts)

    def _constant(self, node: ast.AST, scope: Scope) -> bool:
        match node:
            case ast.Constant():
                return True
            case ast.JoinedStr(values=values) | ast.Tuple(elts=values) | ast.List(elts=values):
                return all(self.constant(v, scope) for v in values)
            case ast.FormattedValue(value=value):
                return self.constant(value, scope)
            case (
                ast.BinOp(left=ast.Constant(value=str()), op=ast.Mult())
                | ast.BinOp(op=ast.Mult(), right=ast.Constant(value=str()))
            ):
                return True  # a literal repeated: "?" * n
            case ast.BinOp(left=left, op=ast.Add() | ast.Mod() | ast.Mult(), right=right):
                return self.constant(left, scope) and self.constant(right, scope)
            case ast.IfExp(body=body, orelse=orelse):
                return self.constant(body, scope) and self.constant(orelse, scope)
            case ast.Call(func=ast.Name(id="len")):
                return True  # an integer
            case ast.Call(func=ast.Attribute(value=text, attr="join"), args=[items]):
                return self.constant(text, scope) and self._all(self.items(items, scope))
            case ast.Call(func=ast.Attribute(value=text, attr="format"), args=args):
                arguments = [*args, *(k.value for k in node.keywords)]  # type: ignore[attr-defined]
                return self.constant(text, scope) and all(
                    self.constant(a, scope) for a in arguments
                )
            case ast.Name(id=name):
                return self._all(self.values(name, scope))
        return False

    def values(self, name: str, scope: Scope) -> Exprs:
        """Every expression `name` may hold."""
        found: list[tuple[ast.AST, Scope]] = []
        for kind, detail, where in scope.lookup(name) or [("unbound", (), scope)]:
            if kind in ("element", "elements"):
                continue  # a list's items (see `items`), not its value
            if kind == "value":
                got = self.components(detail[0], detail[1], where)
            elif kind == "item":
                got = _each(self.items(detail[0], where), partial(self._part, detail[1]))
            elif kind == "param":
                got = self.arguments(detail[0], detail[1], where)
            elif kind == "import":
                got = self._imported(detail[0], detail[1])
            else:
                got = None  # unbound, opaque, a function or class
            if got is None:
                return None
            found.extend(got)
        return found

    def _imported(self, node: ast.AST, alias: ast.alias) -> Exprs:
        """A name imported from one of the package's modules holds what it holds there."""
        if not isinstance(node, ast.ImportFrom) or node.module not in self.modules:
            return None
        return self.values(alias.name, self.modules[node.module][1])

    def _part(self, index: int | None, node: ast.AST, scope: Scope) -> Exprs:
        return self.components(node, index, scope)

    def components(self, node: ast.AST, index: int | None, scope: Scope) -> Exprs:
        """The expressions the `index`-th element of `node` may be (all of it if None)."""
        if index is None:
            return [(node, scope)]
        if self._depth > 40:
            return None  # a chain this long is not worth following: not provably constant
        self._depth += 1
        try:
            if isinstance(node, ast.Tuple | ast.List):
                elements = node.elts
                return [(elements[index], scope)] if index < len(elements) else None
            if isinstance(node, ast.Name):
                parts = self.values(node.id, scope)
            else:
                parts = self.returns(node, scope)
            return _each(parts, partial(self._part, index))
        finally:
            self._depth -= 1

    def items(self, node: ast.AST, scope: Scope) -> Exprs:
        """The expressions the elements of the iterable `node` may be."""
        match node:
            case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
                return [(e, scope) for e in elts]
            case ast.ListComp(elt=elt) | ast.GeneratorExp(elt=elt) | ast.SetComp(elt=elt):
                return [(elt, scope)]
            case ast.Constant(value=str()) | ast.BinOp(op=ast.Mult()):
                return [(node, scope)]  # the characters of a string
            case ast.Call(func=ast.Name(id="sorted" | "list" | "tuple"), args=[inner]):
                return self.items(inner, scope)
            case ast.Name(id=name):
                return self._name_items(name, scope)
        return _each(self.returns(node, scope), self.items)

    def _name_items(self, name: str, scope: Scope) -> Exprs:
        found: list[tuple[ast.AST, Scope]] = []
        for kind, detail, where in scope.lookup(name) or [("unbound", (), scope)]:
            if kind == "element":
                got: Exprs = [(detail[0], where)]
            elif kind == "elements":
                got = self.items(detail[0], where)
            elif kind == "value":
                got = _each(self.components(detail[0], detail[1], where), self.items)
            else:
                got = None
            if got is None:
                return None
            found.extend(got)
        return found

    def returns(self, node: ast.AST, scope: Scope) -> Exprs:
        """What a call of one of the package's functions (by plain name) may return."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            return None
        target = self._function(node.func.id, scope)
        if target is None:
            return None
        function, inner = target
        found: list[tuple[ast.AST, Scope]] = [
            (n.value, inner)
            for n in self._own_nodes(function)
            if isinstance(n, ast.Return) and n.value is not None
        ]
        return found or None

    def _function(self, name: str, scope: Scope) -> tuple[Function, Scope] | None:
        for kind, detail, _ in scope.lookup(name) or []:
            if kind == "def":
                return self.functions.get((scope.module, name))
            if kind == "import" and isinstance(detail[0], ast.ImportFrom):
                return self.functions.get((detail[0].module or "", detail[1].name))
        return None

    def arguments(self, function: Function, index: int, scope: Scope) -> Exprs:
        """What a parameter may hold: the argument at every call site in the package (or the
        default where a call leaves it out). No call site: unknowable (called from outside)."""
        params = [*function.args.posonlyargs, *function.args.args]
        name = [*params, *function.args.kwonlyargs][index].arg
        positional = [p.arg for p in params]
        defaults = dict(
            zip(
                positional[len(positional) - len(function.args.defaults) :],
                function.args.defaults,
                strict=True,
            )
        )
        defaults |= {
            a.arg: d
            for a, d in zip(function.args.kwonlyargs, function.args.kw_defaults, strict=True)
            if d is not None
        }
        method = bool(params) and params[0].arg in ("self", "cls")
        found: list[tuple[ast.AST, Scope]] = []
        for call, caller in self._calls(function, scope):
            position = index - 1 if method and isinstance(call.func, ast.Attribute) else index
            keyword = next((k.value for k in call.keywords if k.arg == name), None)
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                return None
            if keyword is not None:
                found.append((keyword, caller))
            elif index < len(params) and position < len(call.args):
                found.append((call.args[position], caller))
            elif name in defaults:
                found.append((defaults[name], scope.parent or scope))
            else:
                return None
        return found or None

    def _calls(self, function: Function, scope: Scope) -> Iterator[tuple[ast.Call, Scope]]:
        """Calls of `function`: by plain name wherever that name means it, or as
        `self.name(…)` in its own module."""
        for module, (tree, _) in self.modules.items():
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                caller = self.scope_of(node)
                match node.func:
                    case ast.Name(id=called) if called == function.name:
                        if self._function(called, caller) == (function, scope):
                            yield node, caller
                    case ast.Attribute(value=ast.Name(id="self"), attr=called) if (
                        called == function.name and module == scope.module
                    ):
                        yield node, caller


def imports_a_driver(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name in DRIVERS for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "") in DRIVERS:
            return True
    return False


def dynamic_strings(tree: ast.Module) -> Iterator[ast.AST]:
    """f-strings, `%`, `+` and `.format` whose literal text starts like SQL, wherever they are."""
    for node in ast.walk(tree):
        head: ast.AST | None
        match node:
            case ast.JoinedStr(values=values):
                head = values[0] if values else None
            case ast.BinOp(left=left, op=ast.Mod() | ast.Add()):
                head = left
            case ast.Call(func=ast.Attribute(value=text, attr="format")):
                head = text
            case _:
                continue
        if (
            isinstance(head, ast.Constant)
            and isinstance(head.value, str)
            and SQL_WORDS.match(head.value)
        ):
            yield node


def sql_statements(tree: ast.Module) -> list[ast.AST]:
    """The expressions of `tree` that are (or build) SQL statements."""
    statements: list[ast.AST] = list(dynamic_strings(tree))
    if imports_a_driver(tree):
        statements += [
            node.args[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
            and node.args
        ]
    return statements
