"""The reads of `PostgresStore`'s EventStore half: what the read API shows, as SQLite shows it.

Text is ordered byte-wise (``COLLATE "C"``), as SQLite's default collation orders it, whatever
the database's collation.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from trackd.models import EventRecord
from trackd.store.base import FROM_END, EventQuery
from trackd.store.views import event_view
from trackd.wire.times import iso

_decode_event = msgspec.json.Decoder(EventRecord).decode
_decode = msgspec.json.decode


async def user(conn: asyncpg.Connection, ws: str, customer_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT attributes, identifiers, first_seen, last_seen, event_count FROM users "
        "WHERE workspace = $1 AND customer_id = $2",
        ws,
        customer_id,
    )
    if row is None:
        return None
    attributes, identifiers, first_seen, last_seen, event_count = row
    devices = await conn.fetch(
        "SELECT device_id, platform, app_version, first_seen, last_seen, last_ip FROM devices "
        'WHERE workspace = $1 AND customer_id = $2 ORDER BY device_id COLLATE "C"',
        ws,
        customer_id,
    )
    return {
        "customer_id": customer_id,
        "attributes": _decode(attributes),
        "identifiers": _decode(identifiers),
        "first_seen": iso(first_seen),
        "last_seen": iso(last_seen),
        "event_count": event_count,
        "devices": [
            {
                "device_id": d,
                "platform": p,
                "app_version": v,
                "first_seen": iso(f),
                "last_seen": iso(last),
                "last_ip": ip,
            }
            for d, p, v, f, last, ip in devices
        ],
    }


async def events(
    conn: asyncpg.Connection, q: EventQuery
) -> tuple[list[dict[str, Any]], int | None]:
    if q.after_seq == FROM_END:
        newest = await conn.fetchval(
            "SELECT max(seq) FROM events WHERE workspace = $1", q.workspace_id
        )
        return [], newest or 0
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
    rows = await conn.fetch(
        f"SELECT seq, customer_id, doc FROM events WHERE {' AND '.join(where)} "
        f"ORDER BY seq {order} LIMIT ${len(args) + 1}",
        *args,
        q.limit + 1,
    )
    page = rows[: q.limit]
    if q.after_seq is not None:
        cursor = page[-1][0] if page else None
    else:
        cursor = page[-1][0] if len(rows) > q.limit else None
    return [event_view(_decode_event(doc), customer_id) for _, customer_id, doc in page], cursor


async def schema(conn: asyncpg.Connection, ws: str) -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    for action, count, first, last in await conn.fetch(
        "SELECT action, count, first_seen, last_seen FROM schema_events WHERE workspace = $1 "
        'ORDER BY action COLLATE "C"',
        ws,
    ):
        found[action] = {
            "action": action,
            "count": count,
            "first_seen": iso(first),
            "last_seen": iso(last),
            "attributes": {},
        }
    for action, attribute, type_, count in await conn.fetch(
        "SELECT action, attribute, type, count FROM schema_attributes WHERE workspace = $1 "
        'ORDER BY action COLLATE "C", attribute COLLATE "C", type COLLATE "C"',
        ws,
    ):
        if action in found:
            found[action]["attributes"].setdefault(attribute, {})[type_] = count
    return {"events": list(found.values())}


async def issues(conn: asyncpg.Connection, ws: str, since: int | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT request_id, action_index, attribute, reason, at FROM issues "
        "WHERE workspace = $1 AND at >= $2 ORDER BY id LIMIT 10000",
        ws,
        since or 0,
    )
    return [
        {"request_id": r, "index": i, "attribute": a, "reason": why, "at": iso(at)}
        for r, i, a, why, at in rows
    ]


async def counts(conn: asyncpg.Connection, ws: str) -> dict[str, int]:
    rows = await conn.fetch("SELECT name, value FROM counters WHERE workspace = $1", ws)
    return {name: int(value) for name, value in rows}
