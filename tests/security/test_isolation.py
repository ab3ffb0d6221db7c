"""Workspace isolation, the admin token, keys at rest and in logs, and SQL built only from
constants.

A workspace's Data API key writes and reads that workspace only: `/v1/*/{other}` is contract
row 6 (409), every `/api/workspaces/{other}/…` endpoint is 403 with the same body whether the
other workspace or the thing asked for exists or not. The admin token reads every workspace and
writes none. Keys live only as sha256 hashes, are compared with `hmac.compare_digest`, and never
reach a log line. Every SQL statement in `trackd/` is built from constants (see `SQL_ALLOWED`).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import SEED_BODY, Harness, basic
from trackd import admin
from trackd.store.postgres import _SCHEMA_NAME
from trackd.store.postgres_schema import partition_of
from trackd.store.sqlite import SQLiteWorkspaceStore

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "trackd"
AUTH = "Authentication required"
MISMATCH = ("Authentication Mismatch", "App key mismatch in params and authentication")
FORBIDDEN = ("Forbidden", "These credentials are for another workspace")
READ_ENDPOINTS = ["users/u-b", "events", "schema", "issues", "stats"]
CUSTOMER_BODY = {"type": "customer", "customer_id": "u-b", "attributes": {"plan": "pro"}}
SETTLE_SECONDS = 20.0


def failure(response: httpx.Response, type_: str, message: str) -> dict[str, Any]:
    return {
        "status": "fail",
        "error": {
            "message": message,
            "type": type_,
            "request_id": response.headers["x-request-id"],
        },
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def poll_ok(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Response:
    """GET `path` until 200 (the processor has caught up) or the deadline."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        response = await client.get(path, headers=headers)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await anyio.sleep(0.02)


@pytest.fixture
async def two(harness: Harness) -> tuple[Harness, str, str]:
    """Workspace WS1 (the harness's, key `harness.key`) and WSB with one user, u-b, whose
    event the processor has stored."""
    b_id, b_key = await harness.create_workspace(workspace_id="WSB", name="B")
    seeded = await harness.post(
        {**SEED_BODY, "customer_id": "u-b"}, workspace_id=b_id, headers=harness.headers(b_id, b_key)
    )
    assert seeded.status_code == 200, seeded.text
    user = await poll_ok(harness.client, f"/api/workspaces/{b_id}/users/u-b", bearer("tok"))
    assert user.status_code == 200, user.text
    return harness, b_id, b_key


# -- writes ---------------------------------------------------------------------------------------


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("route", "body"),
    [("event", SEED_BODY), ("customer", CUSTOMER_BODY)],
    ids=["event", "customer"],
)
async def test_a_key_of_one_workspace_cannot_write_to_another_409_row_6(
    two: tuple[Harness, str, str], route: str, body: dict[str, Any]
) -> None:
    harness, b_id, _ = two
    before = len(await harness.queued())
    for path, params in ((f"/v1/{route}/{b_id}", None), (f"/v1/{route}/WS1", {"app_id": b_id})):
        response = await harness.client.post(
            path, json=body, headers=harness.headers(), params=params
        )
        assert response.status_code == 409, path
        assert response.json() == failure(response, *MISMATCH)
    # B's id as the Basic user with A's key: B's key is checked, and it is not this one.
    borrowed = await harness.client.post(
        f"/v1/{route}/{b_id}", json=body, headers=harness.headers(b_id, harness.key)
    )
    assert borrowed.status_code == 401
    assert borrowed.json() == failure(
        borrowed, AUTH, "App Secret key mismatch. Please login to the dashboard to verify key"
    )
    assert len(await harness.queued()) == before  # nothing of any of them was kept


async def test_the_admin_token_writes_nothing(two: tuple[Harness, str, str]) -> None:
    harness, b_id, _ = two
    before = len(await harness.queued())
    response = await harness.client.post(
        f"/v1/event/{b_id}",
        json=SEED_BODY,
        headers={**bearer("tok"), "Content-Type": "application/json"},
    )
    assert response.status_code == 401  # row 3: only Basic writes
    assert response.json() == failure(
        response, AUTH, "Invalid authorization used. Only 'Basic Auth' authorization is supported."
    )
    assert len(await harness.queued()) == before


# -- reads ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
async def test_a_key_of_one_workspace_reads_no_endpoint_of_another_403(
    two: tuple[Harness, str, str], endpoint: str
) -> None:
    harness, b_id, _ = two
    a_auth = {"Authorization": basic("WS1", harness.key)}
    # B exists and holds u-b; NOPE does not exist: the same 403, so no existence oracle.
    for workspace in (b_id, "NOPE"):
        response = await harness.client.get(
            f"/api/workspaces/{workspace}/{endpoint}", headers=a_auth
        )
        assert response.status_code == 403, workspace
        assert response.json() == failure(response, *FORBIDDEN)
    missing_user = await harness.client.get(f"/api/workspaces/{b_id}/users/nobody", headers=a_auth)
    assert missing_user.status_code == 403
    assert missing_user.json() == failure(missing_user, *FORBIDDEN)


@pytest.mark.parametrize("endpoint", READ_ENDPOINTS)
async def test_the_admin_token_reads_every_endpoint_of_every_workspace_as_its_owner_does(
    two: tuple[Harness, str, str], endpoint: str
) -> None:
    harness, b_id, b_key = two
    owners = {"WS1": harness.key, b_id: b_key}
    a_user = await harness.post({**SEED_BODY, "customer_id": "u-b"})  # WS1 has a u-b too
    assert a_user.status_code == 200
    await poll_ok(harness.client, "/api/workspaces/WS1/users/u-b", bearer("tok"))
    for workspace, key in owners.items():
        path = f"/api/workspaces/{workspace}/{endpoint}"
        as_admin = await harness.client.get(path, headers=bearer("tok"))
        as_owner = await harness.client.get(path, headers={"Authorization": basic(workspace, key)})
        assert as_admin.status_code == as_owner.status_code == 200, (path, as_admin.text)
        assert as_admin.json() == as_owner.json()
    events = await harness.client.get(f"/api/workspaces/{b_id}/events", headers=bearer("tok"))
    assert [e["customer_id"] for e in events.json()["events"]] == ["u-b"]


async def test_a_wrong_admin_token_gets_401_on_every_endpoint(
    two: tuple[Harness, str, str],
) -> None:
    harness, b_id, b_key = two
    for token in ("wrong", "tokx", "to", b_key):
        for endpoint in READ_ENDPOINTS:
            response = await harness.client.get(
                f"/api/workspaces/{b_id}/{endpoint}", headers=bearer(token)
            )
            assert response.status_code == 401, (token, endpoint)
            assert response.json() == failure(response, AUTH, "Invalid admin token")


async def test_key_and_admin_token_comparisons_use_hmac_compare_digest(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spy that records and delegates to the real function."""
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    wrong = await harness.post(SEED_BODY, headers=harness.headers(key="not-the-key"))
    assert wrong.status_code == 401
    stored = hashlib.sha256(harness.key.encode()).hexdigest()
    assert calls == [(hashlib.sha256(b"not-the-key").hexdigest(), stored)]
    calls.clear()
    admin_read = await harness.client.get("/api/workspaces/WS1/stats", headers=bearer("nope"))
    assert admin_read.status_code == 401
    assert calls == [(b"nope", b"tok")]


SECRET_NAMES = {"key_hash", "stored_hash", "admin_token", "password", "presented", "secret"}


def test_no_secret_is_compared_with_an_ordinary_operator() -> None:
    """`==`, `!=`, `in` on a key, hash or token would leak its prefix through timing."""
    found = []
    for path, tree in _package_trees():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                continue
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if names & SECRET_NAMES:
                found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


# -- keys at rest and in logs ---------------------------------------------------------------------


async def test_keys_are_32_random_bytes_stored_only_as_their_sha256(tmp_path: Path) -> None:
    store = SQLiteWorkspaceStore(tmp_path / "trackd.db")
    await store.open()
    try:
        workspace, first = await admin.create_workspace(store, workspace_id="KEYS")
        second = await admin.regenerate_key(store, "KEYS")
        stored = await store.get("KEYS")
    finally:
        await store.aclose()
    for key in (first, second):
        assert len(base64.urlsafe_b64decode(key + "=")) == 32
    assert first != second
    assert workspace.key_hash == hashlib.sha256(first.encode()).hexdigest()
    assert stored is not None
    assert stored.key_hash == hashlib.sha256(second.encode()).hexdigest()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert stored.key_hash.encode() in on_disk  # the inspection reads what the store wrote
    for key in (first, second):
        assert key.encode() not in on_disk


async def test_no_key_reaches_a_log_line(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    b_id, b_key = await harness.create_workspace(workspace_id="WSB")
    keys = [harness.key, b_key]
    responses = [
        await harness.post(SEED_BODY),  # right key
        await harness.post(SEED_BODY, headers=harness.headers(key=b_key)),  # B's key on A
        await harness.post(SEED_BODY, headers=harness.headers(key="wrong-" + harness.key)),
        await harness.client.get("/api/workspaces/WS1/stats", headers=bearer(b_key)),
        await harness.client.get(
            f"/api/workspaces/{b_id}/stats", headers={"Authorization": basic("WS1", harness.key)}
        ),
    ]
    assert [r.status_code for r in responses] == [200, 401, 401, 401, 403]
    for workspace in ("WS1", b_id):
        keys.append(await admin.regenerate_key(harness.store, workspace))
    await harness.app.registry.reload()
    old = await harness.post(SEED_BODY)  # the old key, after regeneration
    new = await harness.post(SEED_BODY, headers=harness.headers(key=keys[2]))
    assert (old.status_code, new.status_code) == (401, 200)
    assert caplog.records  # the capture works: requests and the processor log
    logged = caplog.text + "".join(repr(vars(r)) for r in caplog.records)
    for key in keys:
        assert key not in logged
        assert basic("WS1", key).split()[1] not in logged


# -- SQL is built from constants ------------------------------------------------------------------

SQL_METHODS = {"execute", "executemany", "executescript", "fetch", "fetchrow", "fetchval"}
DRIVERS = {"sqlite3", "asyncpg"}
SQL_WORDS = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH)\b", re.I)

#: What SQL may contain that is not built from string constants, and why each is safe. Keyed by
#: (file, function, expression); every entry must still be in use.
SQL_ALLOWED: dict[tuple[str, str, str], str] = {
    ("trackd/store/sqlite_events.py", "SQLiteEventStore.open.opened", "_migrations()"): (
        "the migration script shipped in the wheel (trackd/store/migrations)"
    ),
    ("trackd/store/postgres_schema.py", "migrate", "sql"): (
        "the migration files shipped in the wheel (trackd/store/migrations/postgres)"
    ),
    ("trackd/store/postgres_schema.py", "migrate", "schema"): (
        "an identifier (cannot be bound): the store URL's schema, which must match "
        "_SCHEMA_NAME (letters, digits, underscores); checked below"
    ),
    ("trackd/store/postgres_schema.py", "ensure_partitions", "name"): (
        "DDL (cannot be bound): partition_of's events_YYYY_MM; checked below"
    ),
    ("trackd/store/postgres_schema.py", "ensure_partitions", "low"): (
        "DDL bound: an integer from partition_of; checked below"
    ),
    ("trackd/store/postgres_schema.py", "ensure_partitions", "high"): (
        "DDL bound: an integer from partition_of; checked below"
    ),
}

Function = ast.FunctionDef | ast.AsyncFunctionDef
#: Expressions (each with the scope it is evaluated in); None: what they are cannot be known.
Exprs = list[tuple[ast.AST, "Scope"]] | None


def _package_trees() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(), str(path))


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
    Anything else (attributes, subscripts, other calls, unknown names) is not constant."""

    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], tuple[Function, Scope]] = {}
        self.modules: dict[str, tuple[ast.Module, Scope]] = {}
        self.owner: dict[int, Scope] = {}  # id(node) -> the scope whose body holds it
        self.used: set[tuple[str, str, str]] = set()
        self._stack: set[tuple[int, int]] = set()
        self._depth = 0
        for path, tree in _package_trees():
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
        allowed = (scope.path, scope.qualname, ast.unparse(node))
        if allowed in SQL_ALLOWED:
            self.used.add(allowed)
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


def _imports_a_driver(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name in DRIVERS for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "") in DRIVERS:
            return True
    return False


def _dynamic_strings(tree: ast.Module) -> Iterator[ast.AST]:
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


def test_every_sql_statement_is_built_from_constants_and_binds_its_values() -> None:
    """Every `.execute`/`.executemany`/`.executescript`/`.fetch*` of a module that imports a
    SQL driver, and every SQL-looking f-string/`%`/`.format` anywhere in trackd/, is built from
    constant fragments only (`Constness`), or from what `SQL_ALLOWED` lists with its reason:
    values go in as bound parameters."""
    analysis = Constness()
    checked, unsafe = 0, []
    for tree, top in list(analysis.modules.values()):
        statements: list[ast.AST] = list(_dynamic_strings(tree))
        if _imports_a_driver(tree):
            statements += [
                node.args[0]
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_METHODS
                and node.args
            ]
        for statement in statements:
            checked += 1
            if not analysis.constant(statement, analysis.scope_of(statement)):
                unsafe.append(f"{top.path}:{statement.lineno}: {ast.unparse(statement)[:120]}")
    assert unsafe == []
    assert checked >= 60  # the scan sees the package's SQL (about 90 statements)
    assert analysis.used == set(SQL_ALLOWED)  # no stale entry


SCRATCH = """
import sqlite3
PREFIX = "SELECT * FROM t WHERE "

def f_string(conn, user):
    conn.execute(f"SELECT * FROM t WHERE id = '{user}'")

def percent(conn, user):
    conn.execute("SELECT * FROM t WHERE id = '%s'" % user)

def keyword_format(conn, user):
    conn.execute("SELECT * FROM t WHERE id = '{u}'".format(u=user))

def via_local(conn, user):
    sql = PREFIX + user
    conn.execute(sql)

def via_walrus(conn, user):
    if (sql := PREFIX + user):
        conn.execute(sql)

def via_list(conn, user):
    where = ["a = ?"]
    where.append(f"b = '{user}'")
    conn.execute(f"SELECT * FROM t WHERE {' AND '.join(where)}")

def via_attribute(conn, request):
    conn.execute(PREFIX + request.query)

def via_param(conn, sql):
    conn.execute(sql)

def caller(conn, user):
    via_param(conn, "SELECT 1 WHERE x = " + user)

def statement(kind):
    if kind:
        return "SELECT 1", ()
    return "SELECT 2", (kind,)

def fine(conn, user, since, kind):
    where, args = ["a = ?"], [user]
    for clause, value in (("b = ?", since), ("c > ?", None)):
        if value is not None:
            where.append(clause)
            args.append(value)
    order = "ASC" if since else "DESC"
    marks = ",".join("?" * len(args))
    conn.execute(f"SELECT * FROM t WHERE {' AND '.join(where)} AND d IN ({marks}) {order}", args)
    sql, params = statement(kind)
    conn.execute(sql, params)
    forwarded(conn, PREFIX + "e = ?")

def forwarded(conn, sql):
    conn.execute(sql)
"""


def test_the_analysis_rejects_values_interpolated_into_sql() -> None:
    """The checker itself, on a scratch module: the unsafe shapes are caught, the package's
    safe shapes pass."""
    analysis = Constness()
    module = ast.parse(SCRATCH)
    analysis.add("scratch", "scratch.py", module)
    verdicts: dict[str, list[bool]] = {}
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "execute":
            scope = analysis.scope_of(node)
            verdicts.setdefault(scope.qualname, []).append(analysis.constant(node.args[0], scope))
    assert verdicts == {
        "f_string": [False],
        "percent": [False],
        "keyword_format": [False],
        "via_local": [False],
        "via_walrus": [False],
        "via_list": [False],
        "via_attribute": [False],
        "via_param": [False],
        "fine": [True, True],
        "forwarded": [True],
    }


def test_the_allowed_sql_identifiers_are_what_they_claim() -> None:
    assert _SCHEMA_NAME.fullmatch("tenant_01")
    for hostile in ('x"; DROP TABLE events; --', "a b", "a-b", 'a"', ""):
        assert not _SCHEMA_NAME.fullmatch(hostile)
    for epoch_ms in (0, 946684800000, 1708939453396, 4102444799999, -1):
        found = partition_of(epoch_ms)
        if found is not None:
            name, low, high = found
            assert re.fullmatch(r"events_\d{4}_\d{2}", name)
            assert isinstance(low, int) and isinstance(high, int) and low <= epoch_ms < high
