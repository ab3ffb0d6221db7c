"""The request log (`trackd.store.request_log.RequestLog`) in the embedded store's SQLite file.

Its own connection and thread beside the event store's, so that the edge's flushes never wait
for a read of the read API (and the reads never for a flush); `synchronous=NORMAL`: the log is
a debugging aid, not data a 200 promised to keep.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from trackd.embedded import connect
from trackd.errors import StoreError
from trackd.models import RequestEntry
from trackd.store import sqlite_deletes
from trackd.store.base import MINUTES_KEPT_MS, MinuteCounts, RequestQuery
from trackd.store.request_log import entry_doc, request_page, unerased
from trackd.store.sqlite_schema import migrate

T = TypeVar("T")
CHUNK = 500


class SQLiteRequestLog:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreError("the request log is not open")
            return fn(self._conn)

        if self._pool is None:
            raise StoreError("the request log is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except sqlite3.Error as exc:
            raise StoreError(f"request log at {self._path}: {exc}") from exc

    async def open(self) -> None:
        def opened() -> sqlite3.Connection:
            conn = connect(self._path, "NORMAL")
            migrate(conn)
            return conn

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-requests")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._pool, opened)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the request log at {self._path}: {exc}") from exc

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=False)

    async def append(self, entries: list[RequestEntry], keep: int) -> None:
        if entries:
            await self._run(lambda conn: _append(conn, entries, keep))

    async def requests(self, query: RequestQuery) -> tuple[list[dict[str, Any]], int | None]:
        return await self._run(lambda conn: _requests(conn, query))

    async def add_minutes(self, counts: dict[tuple[str, int], MinuteCounts]) -> None:
        if counts:
            await self._run(lambda conn: _add_minutes(conn, counts))

    async def minutes(self, workspace_id: str, since: int) -> dict[int, MinuteCounts]:
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT minute, accepted_events, accepted_requests, rejected_requests "
                "FROM request_minutes WHERE workspace = ? AND minute >= ? ORDER BY minute",
                (workspace_id, since),
            ).fetchall()
        )
        return {minute: (a, b, c) for minute, a, b, c in rows}

    async def erase(self, workspace_id: str, customer_ids: list[str]) -> int:
        def erase(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                return sqlite_deletes.erase_requests(conn, workspace_id, customer_ids)

        return await self._run(erase) if customer_ids else 0


def _append(conn: sqlite3.Connection, entries: list[RequestEntry], keep: int) -> None:
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        entries = unerased(entries, sqlite_deletes.request_marks(conn, entries))
        conn.executemany(
            "INSERT INTO request_log (workspace, at, status, customer_id, doc, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.workspace_id, e.at, e.status, e.customer_id, entry_doc(e), e.body)
                for e in entries
            ],
        )
        for workspace in {e.workspace_id for e in entries}:
            conn.execute(
                "DELETE FROM request_log WHERE workspace = ?1 AND seq <= (SELECT seq FROM "
                "request_log WHERE workspace = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                (workspace, keep),
            )


def _requests(conn: sqlite3.Connection, q: RequestQuery) -> tuple[list[dict[str, Any]], int | None]:
    where, args = ["workspace = ?"], [q.workspace_id]
    for clause, value in (
        ("status = ?", q.status),
        ("status >= ?", None if q.status_class is None else q.status_class * 100),
        ("status < ?", None if q.status_class is None else q.status_class * 100 + 100),
        ("at >= ?", q.since),
        ("seq < ?", q.before_seq),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)  # type: ignore[arg-type]
    rows = conn.execute(
        f"SELECT seq, doc, body FROM request_log WHERE {' AND '.join(where)} "
        "ORDER BY seq DESC LIMIT ?",
        (*args, q.limit + 1),
    ).fetchall()
    return request_page(rows, q.limit)


def _add_minutes(conn: sqlite3.Connection, counts: dict[tuple[str, int], MinuteCounts]) -> None:
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO request_minutes VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (workspace, minute) DO UPDATE SET "
            "accepted_events = accepted_events + excluded.accepted_events, "
            "accepted_requests = accepted_requests + excluded.accepted_requests, "
            "rejected_requests = rejected_requests + excluded.rejected_requests",
            [(ws, minute, *n) for (ws, minute), n in sorted(counts.items())],
        )
        newest: dict[str, int] = {}
        for ws, minute in counts:
            newest[ws] = max(minute, newest.get(ws, minute))
        conn.executemany(
            "DELETE FROM request_minutes WHERE workspace = ? AND minute < ?",
            [(ws, minute - MINUTES_KEPT_MS) for ws, minute in newest.items()],
        )
