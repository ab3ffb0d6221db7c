"""The merge half of `SQLiteBatch` (`trackd.store.base.Batch`: `aliases`, `merged_on`, `merge`),
and the alias lookup the reads share. Each runs on the store's thread, inside the batch's
transaction (the reads' one outside any)."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from trackd.store.records import IdentifierKey, MergeWrite, UserKey

_encode = msgspec.json.Encoder().encode

_ALIAS = "SELECT customer_id FROM user_aliases WHERE workspace = ? AND alias = ?"
_NEWER = "excluded.last_seen >= last_seen"
#: A device row meeting a stored one: the span widens, the latest state wins.
DEVICE_CONFLICT = (
    "ON CONFLICT (workspace, customer_id, device_id) DO UPDATE SET "
    "first_seen = min(first_seen, excluded.first_seen), "
    f"platform = CASE WHEN {_NEWER} THEN excluded.platform ELSE platform END, "
    f"app_version = CASE WHEN {_NEWER} THEN excluded.app_version ELSE app_version END, "
    f"last_ip = CASE WHEN {_NEWER} THEN excluded.last_ip ELSE last_ip END, "
    # Track Device's attributes (data-api.md §1): the later's over the earlier's ({} from events)
    f"attributes = CASE WHEN {_NEWER} THEN json_patch(attributes, excluded.attributes) "
    "ELSE json_patch(excluded.attributes, attributes) END, "
    "last_seen = max(last_seen, excluded.last_seen)"
)
_MOVE_DEVICES = (
    "INSERT INTO devices (workspace, customer_id, device_id, platform, app_version, "
    "first_seen, last_seen, last_ip, attributes) SELECT workspace, ?, device_id, platform, "
    "app_version, first_seen, last_seen, last_ip, attributes FROM devices "
    "WHERE workspace = ? AND customer_id = ? " + DEVICE_CONFLICT
)
#: (retained, workspace, merged): what moves as it is.
_REPOINT = (
    "UPDATE events SET customer_id = ? WHERE workspace = ? AND customer_id = ?",
    "UPDATE user_identifiers SET customer_id = ? WHERE workspace = ? AND customer_id = ?",
    "UPDATE user_aliases SET customer_id = ? WHERE workspace = ? AND customer_id = ?",
)


def live_id(conn: sqlite3.Connection, ws: str, customer_id: str) -> str:
    """The profile `customer_id` names: the one it was merged into, or itself."""
    row = conn.execute(_ALIAS, (ws, customer_id)).fetchone()
    return customer_id if row is None else str(row[0])


def aliases_of(conn: sqlite3.Connection, ws: str, customer_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT alias FROM user_aliases WHERE workspace = ? AND customer_id = ? ORDER BY alias",
        (ws, customer_id),
    )
    return [alias for (alias,) in rows]


def aliases(conn: sqlite3.Connection, users: list[UserKey]) -> dict[UserKey, str]:
    """Only workspaces holding an alias are looked into: a plain batch costs one probe each."""
    workspaces = {ws for ws, _ in users}
    merged = {
        ws
        for ws in workspaces
        if conn.execute("SELECT 1 FROM user_aliases WHERE workspace = ? LIMIT 1", (ws,)).fetchone()
    }
    found = {}
    for user in users:
        if user[0] in merged:
            row = conn.execute(_ALIAS, user).fetchone()
            if row is not None:
                found[user] = row[0]
    return found


def merged_on(conn: sqlite3.Connection, keys: list[IdentifierKey]) -> dict[IdentifierKey, int]:
    found = {}
    for key in keys:
        (n,) = conn.execute(
            "SELECT count(*) FROM user_aliases WHERE workspace = ? AND via_name = ? "
            "AND via_value = ?",
            key,
        ).fetchone()
        if n:
            found[key] = n
    return found


def merge(conn: sqlite3.Connection, merges: list[MergeWrite]) -> None:
    for m in merges:
        _merge_one(conn, m)


def _merge_one(conn: sqlite3.Connection, m: MergeWrite) -> None:
    ws, merged, retained, p = m.workspace_id, m.merged, m.retained, m.profile
    moved = (retained, ws, merged)
    for sql in _REPOINT:
        conn.execute(sql, moved)
    conn.execute(_MOVE_DEVICES, moved)
    conn.execute("DELETE FROM devices WHERE workspace = ? AND customer_id = ?", (ws, merged))
    row = conn.execute(
        "SELECT event_count, moengage_id FROM users WHERE workspace = ? AND customer_id = ?",
        (ws, merged),
    ).fetchone()
    count, moengage_id = row if row is not None else (0, None)
    via_name, via_value = m.via or (None, None)
    conn.execute(
        "INSERT OR REPLACE INTO user_aliases VALUES (?, ?, ?, ?, ?, ?)",
        (ws, merged, retained, moengage_id, via_name, via_value),
    )
    conn.execute(
        "UPDATE users SET attributes = ?, identifiers = ?, first_seen = ?, last_seen = ?, "
        "event_count = event_count + ? WHERE workspace = ? AND customer_id = ?",
        (
            _text(p.attributes),
            _text(p.identifiers),
            p.first_seen,
            p.last_seen,
            count + len(m.events),
            ws,
            retained,
        ),
    )
    conn.execute("DELETE FROM users WHERE workspace = ? AND customer_id = ?", (ws, merged))
    conn.executemany(
        "INSERT INTO events (event_id, workspace, customer_id, action, event_time, "
        "doc) VALUES (?, ?, ?, ?, ?, ?)",
        [(e.event_id, ws, retained, e.action, e.current_time, _encode(e)) for e in m.events],
    )


def _text(value: Any) -> str:
    return _encode(value).decode()
