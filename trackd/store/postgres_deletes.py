"""Delete User's half of `PostgresBatch` and `PostgresStore` (`trackd.store.base`: `live_user`,
`schedule_delete`, `due_deletes`, `hard_delete`), data-api.md §4, as SQLite's
(`sqlite_deletes`) in PostgreSQL's SQL. `hard_delete` takes the workspaces' advisory locks
first (the sweep runs outside a claimed batch), so it never races a batch of the same
workspace on another node."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg

from trackd.models import RequestEntry
from trackd.store.records import UserKey
from trackd.store.request_log import ERASED_KEPT_MS, entry_marks, erased_mark
from trackd.store.views import ERASURE_ATTRIBUTES, ERASURE_COLUMNS, erasure_view


async def live_user(
    conn: asyncpg.Connection, ws: str, identity_type: str, value: str
) -> str | None:
    if identity_type == "moengage_id":
        found: str | None = await conn.fetchval(
            "SELECT customer_id FROM users WHERE workspace = $1 AND moengage_id = $2", ws, value
        )
        return found
    alias = await conn.fetchval(
        "SELECT customer_id FROM user_aliases WHERE workspace = $1 AND alias = $2", ws, value
    )
    customer_id = alias if alias is not None else value
    exists = await conn.fetchval(
        "SELECT 1 FROM users WHERE workspace = $1 AND customer_id = $2", ws, customer_id
    )
    return customer_id if exists is not None else None


async def schedule_delete(
    conn: asyncpg.Connection, user: UserKey, request_id: str, due_at: int
) -> None:
    await conn.execute(
        "INSERT INTO user_deletions AS d (workspace, customer_id, request_id, due_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (workspace, customer_id) DO UPDATE SET "
        "due_at = least(d.due_at, excluded.due_at)",
        user[0],
        user[1],
        request_id,
        due_at,
    )


async def due_deletes(conn: asyncpg.Connection, now_ms: int, limit: int) -> list[UserKey]:
    rows = await conn.fetch(
        "SELECT workspace, customer_id FROM user_deletions WHERE due_at <= $1 "
        "ORDER BY due_at, workspace, customer_id LIMIT $2",
        now_ms,
        limit,
    )
    return [(r[0], r[1]) for r in rows]


async def scheduled_at(conn: asyncpg.Connection, ws: str, customer_id: str) -> int | None:
    due = await conn.fetchval(
        "SELECT due_at FROM user_deletions WHERE workspace = $1 AND customer_id = $2",
        ws,
        customer_id,
    )
    return int(due) if due is not None else None


_GONE = (
    "DELETE FROM users WHERE workspace = $1 AND customer_id = $2",
    "DELETE FROM user_identifiers WHERE workspace = $1 AND customer_id = $2",
    "DELETE FROM devices WHERE workspace = $1 AND customer_id = $2",
    "DELETE FROM user_aliases WHERE workspace = $1 AND customer_id = $2",
    "DELETE FROM user_deletions WHERE workspace = $1 AND customer_id = $2",
)


async def hard_delete(
    conn: asyncpg.Connection, users: list[UserKey], lock: Callable[[str], tuple[int, int]]
) -> int:
    for key in sorted({lock(w) for w, _ in users}):
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *key)
    purged = 0
    for ws, customer_id in users:
        status = await conn.execute(
            "DELETE FROM events WHERE workspace = $1 AND customer_id = $2", ws, customer_id
        )
        purged += int(status.rsplit(" ", 1)[-1])
        for sql in _GONE:
            await conn.execute(sql, ws, customer_id)
    return purged


# -- GDPR erasure (data-api.md §6) --


async def users_matching(
    conn: asyncpg.Connection, ws: str, identity_type: str, value: str
) -> list[str]:
    if identity_type == "ID":
        found = await live_user(conn, ws, "customer_id", value)
        return [found] if found is not None else []
    name = ERASURE_ATTRIBUTES[identity_type]
    rows = await conn.fetch(
        "SELECT c FROM ("
        "SELECT customer_id AS c FROM users WHERE workspace = $1 AND attributes ->> $2 = $3 "
        "UNION SELECT customer_id FROM user_identifiers WHERE workspace = $1 AND name = $2 "
        "AND value IN ($3, $4) "
        "UNION SELECT customer_id FROM devices WHERE workspace = $1 AND attributes ->> $2 = $3"
        ') AS found ORDER BY c COLLATE "C"',
        ws,
        name,
        value,
        value.lower(),
    )
    return [r[0] for r in rows]


async def erase_issues(conn: asyncpg.Connection, users: list[UserKey]) -> None:
    for ws, customer_id in users:
        await conn.execute(
            "DELETE FROM issues WHERE workspace = $1 AND request_id IN (SELECT DISTINCT "
            "doc ->> 'request_id' FROM events WHERE workspace = $1 AND customer_id = $2)",
            ws,
            customer_id,
        )


async def record_erasure(conn: asyncpg.Connection, record: dict[str, object]) -> None:
    await conn.execute(
        "INSERT INTO erasures (workspace, request_id, submitted_time, received_at, applied_at, "
        "identity_types, users, events) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT DO NOTHING",
        *(record[k] for k in ERASURE_COLUMNS),
    )


async def erasures(conn: asyncpg.Connection, ws: str) -> list[dict[str, object]]:
    rows = await conn.fetch(
        "SELECT request_id, submitted_time, received_at, applied_at, identity_types, users, "
        'events FROM erasures WHERE workspace = $1 ORDER BY applied_at, request_id COLLATE "C"',
        ws,
    )
    return [erasure_view(tuple(r)) for r in rows]


async def erase_requests(
    conn: asyncpg.Connection, workspace_id: str, customer_ids: list[str]
) -> int:
    """In the caller's transaction: remove the request log's entries of these customers in the
    workspace, and mark them erased now, so that an entry an edge recorded before and flushes
    after is not kept (the request log calls `request_marks` before it appends, then
    `trackd.store.request_log.unerased`); returns how many entries went."""
    now = int(time.time() * 1000)
    status = await conn.execute(
        "DELETE FROM request_log WHERE workspace = $1 AND customer_id = ANY($2::text[])",
        workspace_id,
        [c.replace("\x00", "\ufffd") for c in customer_ids],
    )
    await conn.execute(
        "INSERT INTO request_log_erased SELECT $1, mark, $3 FROM unnest($2::bytea[]) AS mark "
        "ON CONFLICT (mark, workspace) DO UPDATE SET "
        "erased_at = greatest(request_log_erased.erased_at, excluded.erased_at)",
        workspace_id,
        sorted({erased_mark(c) for c in customer_ids}),
        now,
    )
    await conn.execute("DELETE FROM request_log_erased WHERE erased_at < $1", now - ERASED_KEPT_MS)
    return int(status.split()[-1])


async def request_marks(
    conn: asyncpg.Connection, entries: list[RequestEntry]
) -> dict[tuple[str, bytes], int]:
    """The live erasure marks of these entries' customers (none, nearly always), the expired
    marks forgotten first."""
    if await conn.fetchval("SELECT 1 FROM request_log_erased LIMIT 1") is None:
        return {}
    await conn.execute(
        "DELETE FROM request_log_erased WHERE erased_at < $1",
        int(time.time() * 1000) - ERASED_KEPT_MS,
    )
    rows = await conn.fetch(
        "SELECT workspace, mark, erased_at FROM request_log_erased WHERE mark = ANY($1::bytea[])",
        entry_marks(entries),
    )
    return {(ws, bytes(mark)): int(at) for ws, mark, at in rows}
