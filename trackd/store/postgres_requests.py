"""The request log (`trackd.store.request_log.RequestLog`) on PostgreSQL: a small pool of its
own beside the store's, and the tables of migrations 0006 and 0008 (applied on `open`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from trackd.errors import StoreError
from trackd.models import RequestEntry
from trackd.store import postgres_deletes
from trackd.store.base import MINUTES_KEPT_MS, MinuteCounts, RequestQuery
from trackd.store.postgres import parse_url
from trackd.store.postgres_schema import migrate
from trackd.store.request_log import entry_doc, request_page, unerased

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_TRIM = (
    "DELETE FROM request_log WHERE workspace = $1 AND seq <= (SELECT seq FROM request_log "
    "WHERE workspace = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)"
)


def _text(value: str | None) -> str | None:
    return None if value is None else value.replace("\x00", "\ufffd")


class PostgresRequestLog:
    def __init__(self, url: str, *, max_size: int = 2) -> None:
        self._dsn, self._schema, self.where = parse_url(url)
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is None:
            raise StoreError(f"the request log at {self.where} is not open")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"request log at {self.where}: {exc}") from exc

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"application_name": "trackd-requests"}
        if self._schema is not None:
            settings["search_path"] = f'"{self._schema}"'
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._max_size, server_settings=settings
            )
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"cannot open the request log at {self.where}: {exc}") from exc
        try:
            async with self._connection() as conn:
                await migrate(conn, self._schema)
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def append(self, entries: list[RequestEntry], keep: int) -> None:
        if not entries:
            return
        async with self._connection() as conn, conn.transaction():
            entries = unerased(entries, await postgres_deletes.request_marks(conn, entries))
            rows = [
                (
                    e.workspace_id,
                    e.at,
                    e.status,
                    _text(e.customer_id),
                    entry_doc(e).decode(),
                    e.body,
                )
                for e in entries
            ]
            await conn.executemany(
                "INSERT INTO request_log (workspace, at, status, customer_id, doc, body) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                rows,
            )
            for workspace in sorted({e.workspace_id for e in entries}):
                await conn.execute(_TRIM, workspace, keep)

    async def requests(self, query: RequestQuery) -> tuple[list[dict[str, Any]], int | None]:
        q = query
        where = ["workspace = $1"]
        args: list[object] = [q.workspace_id]
        for clause, value in (
            ("status = ${}", q.status),
            ("status >= ${}", None if q.status_class is None else q.status_class * 100),
            ("status < ${}", None if q.status_class is None else q.status_class * 100 + 100),
            ("at >= ${}", q.since),
            ("seq < ${}", q.before_seq),
        ):
            if value is not None:
                args.append(value)
                where.append(clause.format(len(args)))
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT seq, doc, body FROM request_log WHERE {' AND '.join(where)} "
                f"ORDER BY seq DESC LIMIT ${len(args) + 1}",
                *args,
                q.limit + 1,
            )
        return request_page(rows, q.limit)

    async def add_minutes(self, counts: dict[tuple[str, int], MinuteCounts]) -> None:
        if not counts:
            return
        newest: dict[str, int] = {}
        for ws, minute in counts:
            newest[ws] = max(minute, newest.get(ws, minute))
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO request_minutes VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (workspace, minute) DO UPDATE SET "
                "accepted_events = request_minutes.accepted_events + excluded.accepted_events, "
                "accepted_requests = request_minutes.accepted_requests "
                "+ excluded.accepted_requests, "
                "rejected_requests = request_minutes.rejected_requests "
                "+ excluded.rejected_requests",
                [(ws, minute, *n) for (ws, minute), n in sorted(counts.items())],
            )
            await conn.executemany(
                "DELETE FROM request_minutes WHERE workspace = $1 AND minute < $2",
                [(ws, minute - MINUTES_KEPT_MS) for ws, minute in sorted(newest.items())],
            )

    async def minutes(self, workspace_id: str, since: int) -> dict[int, MinuteCounts]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT minute, accepted_events, accepted_requests, rejected_requests "
                "FROM request_minutes WHERE workspace = $1 AND minute >= $2 ORDER BY minute",
                workspace_id,
                since,
            )
        return {int(m): (int(a), int(b), int(c)) for m, a, b, c in rows}

    async def erase(self, workspace_id: str, customer_ids: list[str]) -> int:
        if not customer_ids:
            return 0
        async with self._connection() as conn, conn.transaction():
            return await postgres_deletes.erase_requests(conn, workspace_id, customer_ids)
