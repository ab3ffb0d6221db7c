"""Delete User's half of `SQLiteBatch` and `SQLiteEventStore` (`trackd.store.base`: `live_user`,
`schedule_delete`, `due_deletes`, `hard_delete`), data-api.md §4. Each runs on the store's
thread; the batch's inside its transaction."""

from __future__ import annotations

import sqlite3
import time

from trackd.models import RequestEntry
from trackd.store.records import UserKey
from trackd.store.request_log import ERASED_KEPT_MS, entry_marks, erased_mark
from trackd.store.views import ERASURE_ATTRIBUTES, ERASURE_COLUMNS, erasure_view


def live_user(conn: sqlite3.Connection, ws: str, identity_type: str, value: str) -> str | None:
    """The customer id of the live profile `value` names (a customer id, an alias of one, or a
    moengage id), or None."""
    if identity_type == "moengage_id":
        row = conn.execute(
            "SELECT customer_id FROM users WHERE workspace = ? AND moengage_id = ?", (ws, value)
        ).fetchone()
        return row[0] if row is not None else None
    alias = conn.execute(
        "SELECT customer_id FROM user_aliases WHERE workspace = ? AND alias = ?", (ws, value)
    ).fetchone()
    customer_id = alias[0] if alias is not None else value
    row = conn.execute(
        "SELECT 1 FROM users WHERE workspace = ? AND customer_id = ?", (ws, customer_id)
    ).fetchone()
    return customer_id if row is not None else None


def schedule_delete(conn: sqlite3.Connection, user: UserKey, request_id: str, due_at: int) -> None:
    conn.execute(
        "INSERT INTO user_deletions (workspace, customer_id, request_id, due_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (workspace, customer_id) DO UPDATE SET "
        "due_at = min(due_at, excluded.due_at)",
        (user[0], user[1], request_id, due_at),
    )


def due_deletes(conn: sqlite3.Connection, now_ms: int, limit: int) -> list[UserKey]:
    rows = conn.execute(
        "SELECT workspace, customer_id FROM user_deletions WHERE due_at <= ? "
        "ORDER BY due_at, workspace, customer_id LIMIT ?",
        (now_ms, limit),
    ).fetchall()
    return [(w, c) for w, c in rows]


def scheduled_at(conn: sqlite3.Connection, ws: str, customer_id: str) -> int | None:
    row = conn.execute(
        "SELECT due_at FROM user_deletions WHERE workspace = ? AND customer_id = ?",
        (ws, customer_id),
    ).fetchone()
    return int(row[0]) if row is not None else None


_GONE = (
    "DELETE FROM users WHERE workspace = ? AND customer_id = ?",
    "DELETE FROM user_identifiers WHERE workspace = ? AND customer_id = ?",
    "DELETE FROM devices WHERE workspace = ? AND customer_id = ?",
    "DELETE FROM user_aliases WHERE workspace = ? AND customer_id = ?",
    "DELETE FROM user_deletions WHERE workspace = ? AND customer_id = ?",
)


def hard_delete(conn: sqlite3.Connection, users: list[UserKey]) -> int:
    purged = 0
    for user in users:
        purged += conn.execute(
            "DELETE FROM events WHERE workspace = ? AND customer_id = ?", user
        ).rowcount
        for sql in _GONE:
            conn.execute(sql, user)
    return purged


#: Customer ids per statement (SQLite allows 32,766 parameters).
_CHUNK = 500


# -- GDPR erasure (data-api.md §6) --


def users_matching(conn: sqlite3.Connection, ws: str, identity_type: str, value: str) -> list[str]:
    if identity_type == "ID":
        found = live_user(conn, ws, "customer_id", value)
        return [found] if found is not None else []
    name = ERASURE_ATTRIBUTES[identity_type]  # a fixed name, never the request's text
    rows = conn.execute(
        "SELECT customer_id FROM users WHERE workspace = ? AND json_extract(attributes, ?) = ? "
        "UNION SELECT customer_id FROM user_identifiers WHERE workspace = ? AND name = ? "
        "AND value IN (?, ?) "
        "UNION SELECT customer_id FROM devices WHERE workspace = ? "
        "AND json_extract(attributes, ?) = ? ORDER BY 1",
        (ws, f'$."{name}"', value, ws, name, value, value.lower(), ws, f'$."{name}"', value),
    ).fetchall()
    return [c for (c,) in rows]


def erase_issues(conn: sqlite3.Connection, users: list[UserKey]) -> None:
    """The issues of the requests whose events these users have."""
    for ws, customer_id in users:
        conn.execute(
            "DELETE FROM issues WHERE workspace = ? AND request_id IN (SELECT DISTINCT "
            "json_extract(doc, '$.request_id') FROM events WHERE workspace = ? "
            "AND customer_id = ?)",
            (ws, ws, customer_id),
        )


def record_erasure(conn: sqlite3.Connection, record: dict[str, object]) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO erasures (workspace, request_id, submitted_time, received_at, "
        "applied_at, identity_types, users, events) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        tuple(record[k] for k in ERASURE_COLUMNS),
    )


def erasures(conn: sqlite3.Connection, ws: str) -> list[dict[str, object]]:
    rows = conn.execute(
        "SELECT request_id, submitted_time, received_at, applied_at, identity_types, users, "
        "events FROM erasures WHERE workspace = ? ORDER BY applied_at, request_id",
        (ws,),
    ).fetchall()
    return [erasure_view(r) for r in rows]


def erase_requests(conn: sqlite3.Connection, workspace_id: str, customer_ids: list[str]) -> int:
    """In the caller's transaction: remove the request log's entries of these customers in the
    workspace, and mark them erased now, so that an entry an edge recorded before and flushes
    after is not kept (the request log calls `request_marks` before it appends, then
    `trackd.store.request_log.unerased`); returns how many entries went."""
    now = int(time.time() * 1000)
    removed = 0
    for start in range(0, len(customer_ids), _CHUNK):
        chunk = customer_ids[start : start + _CHUNK]
        params = ",".join("?" * len(chunk))
        removed += conn.execute(
            f"DELETE FROM request_log WHERE workspace = ? AND customer_id IN ({params})",
            (workspace_id, *chunk),
        ).rowcount
    conn.executemany(
        "INSERT INTO request_log_erased VALUES (?, ?, ?) ON CONFLICT (mark, workspace) "
        "DO UPDATE SET erased_at = max(erased_at, excluded.erased_at)",
        [(workspace_id, erased_mark(c), now) for c in customer_ids],
    )
    conn.execute("DELETE FROM request_log_erased WHERE erased_at < ?", (now - ERASED_KEPT_MS,))
    return removed


def request_marks(
    conn: sqlite3.Connection, entries: list[RequestEntry]
) -> dict[tuple[str, bytes], int]:
    """The live erasure marks of these entries' customers (none, nearly always), the expired
    marks forgotten first."""
    if conn.execute("SELECT 1 FROM request_log_erased LIMIT 1").fetchone() is None:
        return {}
    conn.execute(
        "DELETE FROM request_log_erased WHERE erased_at < ?",
        (int(time.time() * 1000) - ERASED_KEPT_MS,),
    )
    found: dict[tuple[str, bytes], int] = {}
    wanted = entry_marks(entries)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = conn.execute(
            "SELECT workspace, mark, erased_at FROM request_log_erased "
            f"WHERE mark IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        found.update(((ws, bytes(mark)), at) for ws, mark, at in rows)
    return found
