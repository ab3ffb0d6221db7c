"""The PostgreSQL store: one `PostgresStore` is both the WorkspaceStore and the EventStore.

URL: ``postgresql://user[:password]@host[:port]/database[?schema=name]`` (``postgres://`` too).
The tables live in the database's default schema (``public``), or in `schema` when given, which
is created if missing; every other query parameter is asyncpg's (``sslmode``, …). `open` makes
an asyncpg pool and applies the migrations (`trackd.store.postgres_schema`), so the first node
to start creates the tables and the others wait for it; `trackd migrate` does the same alone.

Workspaces are rows of (id, doc jsonb); `meta.revision` is bumped by the same statement as each
change, so `revision()`, polled by every node, reads one row. The event half is in
`trackd.store.postgres_events` (batches) and `trackd.store.postgres_reads`. Driver and network
errors become `StoreError`.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import msgspec

from trackd.errors import ConfigError, NotFound, StoreError
from trackd.models import Workspace
from trackd.store import postgres_deletes
from trackd.store import postgres_events as ev
from trackd.store import postgres_reads as reads
from trackd.store.base import EventQuery
from trackd.store.postgres_schema import migrate
from trackd.store.views import line_pages

_decode = msgspec.json.Decoder(Workspace).decode
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
# One statement each: the change and the revision bump commit together, or neither does.
_CREATE = (
    "WITH created AS (INSERT INTO workspaces VALUES ($1, $2::jsonb) "
    "ON CONFLICT (id) DO NOTHING RETURNING 1) "
    "UPDATE meta SET value = value + 1 WHERE key = 'revision' AND EXISTS (SELECT FROM created) "
    "RETURNING value"
)
_SAVE = (
    "WITH saved AS (UPDATE workspaces SET doc = $2::jsonb WHERE id = $1 RETURNING 1) "
    "UPDATE meta SET value = value + 1 WHERE key = 'revision' AND EXISTS (SELECT FROM saved) "
    "RETURNING value"
)


def parse_url(url: str) -> tuple[str, str | None, str]:
    """(asyncpg DSN, schema or None, where: the URL without credentials, for messages)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    schema = schemas[-1] if schemas else None
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(
            f"schema={schema!r} in the store URL: expected letters, digits and underscores"
        )
    dsn_query = urlencode([(name, value) for name, value in query if name != "schema"])
    dsn = urlunsplit(parts._replace(query=dsn_query))
    try:
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    except ValueError as exc:  # a port that is not a number
        raise ConfigError(f"store URL {url!r}: {exc}") from exc
    return dsn, schema, where + (f"?schema={schema}" if schema else "")


class PostgresStore:
    """WorkspaceStore and EventStore on one asyncpg pool (see the module docstring)."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn, self._schema, self.where = parse_url(url)
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._partitions: set[str] = set()  # monthly partitions known to exist

    def _settings(self) -> dict[str, str]:
        settings = {"application_name": "trackd"}
        if self._schema is not None:
            settings["search_path"] = f'"{self._schema}"'
        return settings

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"postgresql store at {self.where}: {exc}") from exc

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError(f"the postgresql store at {self.where} is not open")
        async with self._errors(), self._pool.acquire() as conn:
            yield conn

    async def open(self) -> None:
        if self._pool is not None:
            return
        async with self._errors():
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                server_settings=self._settings(),
            )
        self._pool = pool
        self._partitions.clear()  # the database may have changed while closed
        try:
            async with self._connection() as conn:
                await migrate(conn, self._schema)
        except BaseException:
            await self.aclose()
            raise

    async def migrate(self) -> list[str]:
        """Apply the migrations not applied yet (open or not); the names of those applied."""
        if self._pool is not None:
            async with self._connection() as conn:
                return await migrate(conn, self._schema)
        async with self._errors():
            conn = await asyncpg.connect(self._dsn, server_settings=self._settings())
            try:
                return await migrate(conn, self._schema)
            finally:
                await conn.close()

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            async with self._errors():
                await pool.close()

    # -- WorkspaceStore -------------------------------------------------------------------

    async def create(self, workspace: Workspace) -> None:
        async with self._connection() as conn:
            doc = msgspec.json.encode(workspace).decode()
            if await conn.fetchval(_CREATE, workspace.id, doc) is None:
                raise ConfigError(f"workspace {workspace.id!r} already exists")

    async def save(self, workspace: Workspace) -> None:
        async with self._connection() as conn:
            doc = msgspec.json.encode(workspace).decode()
            if await conn.fetchval(_SAVE, workspace.id, doc) is None:
                raise NotFound(f"no workspace {workspace.id!r}")

    async def get(self, workspace_id: str) -> Workspace | None:
        async with self._connection() as conn:
            doc = await conn.fetchval("SELECT doc FROM workspaces WHERE id = $1", workspace_id)
        return None if doc is None else _decode(doc)

    async def list(self) -> list[Workspace]:
        async with self._connection() as conn:
            rows = await conn.fetch('SELECT doc FROM workspaces ORDER BY id COLLATE "C"')
        return [_decode(doc) for (doc,) in rows]

    async def revision(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT value FROM meta WHERE key = 'revision'"))

    # -- EventStore -----------------------------------------------------------------------

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[ev.PostgresBatch]:
        async with self._connection() as conn, AsyncExitStack() as stack:
            yield ev.PostgresBatch(conn, stack, self._partitions)

    async def add_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """Add to per-workspace counters (the edge's rejected requests, say)."""
        if counts:
            async with self._connection() as conn:
                await ev.add_counters(conn, counts)

    async def user(self, workspace_id: str, customer_id: str) -> dict[str, Any] | None:
        customer_id = customer_id.replace("\x00", "\ufffd")  # as stored (postgres_events)
        async with self._connection() as conn:
            return await reads.user(conn, workspace_id, customer_id)

    async def events(self, query: EventQuery) -> tuple[builtins.list[dict[str, Any]], int | None]:
        async with self._connection() as conn:
            return await reads.events(conn, query)

    def event_lines(self, query: EventQuery) -> AsyncIterator[bytes]:
        """A pooled connection per page, as `events` takes."""

        async def rows(q: EventQuery) -> Sequence[Sequence[Any]]:
            async with self._connection() as conn:
                return await reads.event_rows(conn, q)

        return line_pages(rows, query)

    async def schema(self, workspace_id: str) -> dict[str, Any]:
        async with self._connection() as conn:
            return await reads.schema(conn, workspace_id)

    async def issues(self, workspace_id: str, since: int | None) -> builtins.list[dict[str, Any]]:
        async with self._connection() as conn:
            return await reads.issues(conn, workspace_id, since)

    async def counts(self, workspace_id: str) -> dict[str, int]:
        async with self._connection() as conn:
            return await reads.counts(conn, workspace_id)

    # -- Delete User: `trackd.store.postgres_deletes` --

    async def erasures(self, workspace_id: str) -> builtins.list[dict[str, object]]:
        async with self._connection() as conn:
            return await postgres_deletes.erasures(conn, workspace_id)

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        value = value.replace("\x00", "\ufffd")  # as stored (postgres_events)
        async with self._connection() as conn:
            return await postgres_deletes.live_user(conn, workspace_id, identity_type, value)

    async def identifier_owner(self, workspace_id: str, name: str, value: str) -> str | None:
        name, value = name.replace("\x00", "\ufffd"), value.replace("\x00", "\ufffd")
        async with self._connection() as conn:
            return await reads.identifier_owner(conn, workspace_id, name, value)

    # -- Live stream (issue 13 item 2) --

    async def request_warnings(
        self, workspace_id: str, request_ids: builtins.list[str], since: int, until: int
    ) -> dict[str, builtins.list[dict[str, Any]]]:
        async with self._connection() as conn:
            return await reads.request_warnings(conn, workspace_id, request_ids, since, until)
