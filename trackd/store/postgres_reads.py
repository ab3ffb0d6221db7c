"""The reads of `PostgresStore`'s EventStore half: what the read API shows, as SQLite shows it.

Text is ordered byte-wise (``COLLATE "C"``), as SQLite's default collation orders it, whatever
the database's collation.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from trackd.store.base import FROM_END, EventQuery
from trackd.store.postgres_deletes import scheduled_at
from trackd.store.postgres_merge import aliases_of, live_id
from trackd.store.views import (
    event_page,
    issue_views,
    schema_view,
    user_view,
    warnings_by_request,
)


async def user(conn: asyncpg.Connection, ws: str, customer_id: str) -> dict[str, Any] | None:
    customer_id = await live_id(conn, ws, customer_id)  # a merged user's id: where it went
    row = await conn.fetchrow(
        "SELECT attributes, identifiers, first_seen, last_seen, event_count, moengage_id "
        "FROM users "
        "WHERE workspace = $1 AND customer_id = $2",
        ws,
        customer_id,
    )
    if row is None:
        return None
    devices = await conn.fetch(
        "SELECT device_id, platform, app_version, first_seen, last_seen, last_ip, attributes "
        "FROM devices "
        'WHERE workspace = $1 AND customer_id = $2 ORDER BY device_id COLLATE "C"',
        ws,
        customer_id,
    )
    view = user_view(customer_id, row, devices, await aliases_of(conn, ws, customer_id))
    # -- Delete User (data-api.md §4) --
    due = await scheduled_at(conn, ws, customer_id)
    if due is not None:
        view["deletion_scheduled_at"] = due
    return view


async def events(
    conn: asyncpg.Connection, q: EventQuery
) -> tuple[list[dict[str, Any]], int | None]:
    if q.after_seq == FROM_END:
        newest = await conn.fetchval(
            "SELECT max(seq) FROM events WHERE workspace = $1", q.workspace_id
        )
        return [], newest or 0
    return event_page(await event_rows(conn, q), q)


async def event_rows(conn: asyncpg.Connection, q: EventQuery) -> list[asyncpg.Record]:
    """Up to `q.limit + 1` rows of (seq, customer_id, doc) of the events `q` matches."""
    if q.customer_id is not None:  # a merged user's id: the events of the profile it went into
        live = await live_id(conn, q.workspace_id, q.customer_id)
        q = msgspec.structs.replace(q, customer_id=live)
    where = ["workspace = $1"]
    args: list[object] = [q.workspace_id]
    for clause, value in (
        ("customer_id = ${}", q.customer_id),
        ("action = ${}", q.action),
        ("event_time >= ${}", q.since),
        ("event_time < ${}", q.until),
        ("seq < ${}", q.before_seq),
        ("seq > ${}", q.after_seq),
    ):
        if value is not None:
            args.append(value)
            where.append(clause.format(len(args)))
    order = "ASC" if q.after_seq is not None else "DESC"
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT seq, customer_id, doc FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY seq {order} LIMIT ${len(args) + 1}",
        *args,
        q.limit + 1,
    )
    return rows


async def schema(conn: asyncpg.Connection, ws: str) -> dict[str, Any]:
    names = await conn.fetch(
        "SELECT action, count, first_seen, last_seen FROM schema_events WHERE workspace = $1 "
        'ORDER BY action COLLATE "C"',
        ws,
    )
    attributes = await conn.fetch(
        "SELECT action, attribute, type, count FROM schema_attributes WHERE workspace = $1 "
        'ORDER BY action COLLATE "C", attribute COLLATE "C", type COLLATE "C"',
        ws,
    )
    return schema_view(names, attributes)


async def issues(conn: asyncpg.Connection, ws: str, since: int | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT request_id, action_index, attribute, reason, at FROM issues "
        "WHERE workspace = $1 AND at >= $2 ORDER BY id LIMIT 10000",
        ws,
        since or 0,
    )
    return issue_views(rows)


async def counts(conn: asyncpg.Connection, ws: str) -> dict[str, int]:
    rows = await conn.fetch("SELECT name, value FROM counters WHERE workspace = $1", ws)
    return {name: int(value) for name, value in rows}


# -- Live stream (issue 13 item 2) --


async def request_warnings(
    conn: asyncpg.Connection, ws: str, request_ids: list[str], since: int, until: int
) -> dict[str, list[dict[str, Any]]]:
    if not request_ids:
        return {}
    rows = await conn.fetch(
        "SELECT request_id, action_index, attribute, reason FROM issues "
        "WHERE workspace = $1 AND at >= $2 AND at <= $3 AND request_id = ANY($4::text[]) "
        "ORDER BY id",
        ws,
        since,
        until,
        list(dict.fromkeys(request_ids)),
    )
    return warnings_by_request(rows)


async def identifier_owner(conn: asyncpg.Connection, ws: str, name: str, value: str) -> str | None:
    owner = await conn.fetchval(
        "SELECT customer_id FROM user_identifiers "
        "WHERE workspace = $1 AND name = $2 AND value = $3",
        ws,
        name,
        value,
    )
    return None if owner is None else str(owner)
