"""Delete User's half of `SQLiteBatch` and `SQLiteEventStore` (`trackd.store.base`: `live_user`,
`schedule_delete`, `due_deletes`, `hard_delete`), data-api.md §4. Each runs on the store's
thread; the batch's inside its transaction."""

from __future__ import annotations

import sqlite3

from trackd.store.records import UserKey


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
