"""The reads of `SQLiteEventStore`: what the read API shows, as PostgreSQL shows it
(`postgres_reads`). Each runs on the store's thread, when no batch is open."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from trackd.store.base import FROM_END, EventQuery
from trackd.store.sqlite_deletes import scheduled_at
from trackd.store.sqlite_merge import aliases_of, live_id
from trackd.store.views import (
    event_page,
    issue_views,
    schema_view,
    user_view,
    warnings_by_request,
)


def user(conn: sqlite3.Connection, ws: str, customer_id: str) -> dict[str, Any] | None:
    customer_id = live_id(conn, ws, customer_id)  # a merged user's id shows where it went
    row = conn.execute(
        "SELECT attributes, identifiers, first_seen, last_seen, event_count, moengage_id "
        "FROM users "
        "WHERE workspace = ? AND customer_id = ?",
        (ws, customer_id),
    ).fetchone()
    if row is None:
        return None
    devices = conn.execute(
        "SELECT device_id, platform, app_version, first_seen, last_seen, last_ip, attributes "
        "FROM devices "
        "WHERE workspace = ? AND customer_id = ? ORDER BY device_id",
        (ws, customer_id),
    ).fetchall()
    view = user_view(customer_id, row, devices, aliases_of(conn, ws, customer_id))
    # -- Delete User (data-api.md §4) --
    due = scheduled_at(conn, ws, customer_id)
    if due is not None:
        view["deletion_scheduled_at"] = due
    return view


def events(conn: sqlite3.Connection, q: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
    if q.after_seq == FROM_END:
        row = conn.execute("SELECT max(seq) FROM events WHERE workspace = ?", (q.workspace_id,))
        return [], row.fetchone()[0] or 0
    return event_page(event_rows(conn, q), q)


def event_rows(conn: sqlite3.Connection, q: EventQuery) -> list[Any]:
    """Up to `q.limit + 1` rows of (seq, customer_id, doc) of the events `q` matches."""
    if q.customer_id is not None:  # a merged user's id: the events of the profile it went into
        q = msgspec.structs.replace(q, customer_id=live_id(conn, q.workspace_id, q.customer_id))
    where, args = ["workspace = ?"], [q.workspace_id]
    for clause, value in (
        ("customer_id = ?", q.customer_id),
        ("action = ?", q.action),
        ("event_time >= ?", q.since),
        ("event_time < ?", q.until),
        ("seq < ?", q.before_seq),
        ("seq > ?", q.after_seq),
    ):
        if value is not None:
            where.append(clause)
            args.append(value)  # type: ignore[arg-type]
    order = "ASC" if q.after_seq is not None else "DESC"
    return conn.execute(
        f"SELECT seq, customer_id, doc FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY seq {order} LIMIT ?",
        (*args, q.limit + 1),
    ).fetchall()


def schema(conn: sqlite3.Connection, ws: str) -> dict[str, Any]:
    names = conn.execute(
        "SELECT action, count, first_seen, last_seen FROM schema_events WHERE workspace = ? "
        "ORDER BY action",
        (ws,),
    ).fetchall()
    attributes = conn.execute(
        "SELECT action, attribute, type, count FROM schema_attributes WHERE workspace = ? "
        "ORDER BY action, attribute, type",
        (ws,),
    ).fetchall()
    return schema_view(names, attributes)


def issues(conn: sqlite3.Connection, ws: str, since: int | None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT request_id, action_index, attribute, reason, at FROM issues "
        "WHERE workspace = ? AND at >= ? ORDER BY id LIMIT 10000",
        (ws, since or 0),
    ).fetchall()
    return issue_views(rows)


def counts(conn: sqlite3.Connection, ws: str) -> dict[str, int]:
    rows = conn.execute("SELECT name, value FROM counters WHERE workspace = ?", (ws,)).fetchall()
    return {name: int(value) for name, value in rows}


# -- Live stream (issue 13 item 2) --


def request_warnings(
    conn: sqlite3.Connection, ws: str, request_ids: list[str], since: int, until: int
) -> dict[str, list[dict[str, Any]]]:
    ids = list(dict.fromkeys(request_ids))
    rows: list[Any] = []
    for start in range(0, len(ids), 500):  # bound parameters of one IN (...)
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            "SELECT id, request_id, action_index, attribute, reason FROM issues WHERE "
            f"workspace = ? AND at >= ? AND at <= ? AND request_id IN ({marks})",
            (ws, since, until, *chunk),
        ).fetchall()
    return warnings_by_request(row[1:] for row in sorted(rows))


def identifier_owner(conn: sqlite3.Connection, ws: str, name: str, value: str) -> str | None:
    row = conn.execute(
        "SELECT customer_id FROM user_identifiers WHERE workspace = ? AND name = ? AND value = ?",
        (ws, name, value),
    ).fetchone()
    return None if row is None else str(row[0])
