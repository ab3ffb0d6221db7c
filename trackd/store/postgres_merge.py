"""The merge half of `PostgresBatch` (`trackd.store.base.Batch`: `aliases`, `merged_on`,
`merge`), as SQLite's (`sqlite_merge`) in PostgreSQL's SQL, and the alias lookup the reads
share. A batch holds its workspaces' advisory locks (`postgres_events`), so nothing below races
another node's batch of the same workspace."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

from trackd.store.records import IdentifierKey, MergeWrite, UserKey

_encode = msgspec.json.Encoder().encode

_NEWER = "excluded.last_seen >= d.last_seen"
#: A device row meeting a stored one (`devices AS d`): the span widens, the latest state wins.
DEVICE_CONFLICT = (
    "ON CONFLICT (workspace, customer_id, device_id) DO UPDATE SET "
    "first_seen = least(d.first_seen, excluded.first_seen), "
    f"platform = CASE WHEN {_NEWER} THEN excluded.platform ELSE d.platform END, "
    f"app_version = CASE WHEN {_NEWER} THEN excluded.app_version ELSE d.app_version END, "
    f"last_ip = CASE WHEN {_NEWER} THEN excluded.last_ip ELSE d.last_ip END, "
    # Track Device's attributes (data-api.md §1): the later's over the earlier's ({} from events)
    f"attributes = CASE WHEN {_NEWER} THEN d.attributes || excluded.attributes "
    "ELSE excluded.attributes || d.attributes END, "
    "last_seen = greatest(d.last_seen, excluded.last_seen)"
)
_MOVE_DEVICES = (
    "INSERT INTO devices AS d (workspace, customer_id, device_id, platform, app_version, "
    "first_seen, last_seen, last_ip, attributes) SELECT workspace, $1, device_id, platform, "
    "app_version, first_seen, last_seen, last_ip, attributes FROM devices "
    "WHERE workspace = $2 AND customer_id = $3 " + DEVICE_CONFLICT
)
#: ($1 retained, $2 workspace, $3 merged): what moves as it is.
_REPOINT = (
    "UPDATE events SET customer_id = $1 WHERE workspace = $2 AND customer_id = $3",
    "UPDATE user_identifiers SET customer_id = $1 WHERE workspace = $2 AND customer_id = $3",
    "UPDATE user_aliases SET customer_id = $1 WHERE workspace = $2 AND customer_id = $3",
    _MOVE_DEVICES,
    "DELETE FROM devices WHERE workspace = $2 AND customer_id = $3 AND $1::text IS NOT NULL",
)
_ALIAS = "SELECT customer_id FROM user_aliases WHERE workspace = $1 AND alias = $2"


async def live_id(conn: asyncpg.Connection, ws: str, customer_id: str) -> str:
    """The profile `customer_id` names: the one it was merged into, or itself."""
    found = await conn.fetchval(_ALIAS, ws, customer_id)
    return customer_id if found is None else str(found)


async def aliases_of(conn: asyncpg.Connection, ws: str, customer_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT alias FROM user_aliases WHERE workspace = $1 AND customer_id = $2 "
        'ORDER BY alias COLLATE "C"',
        ws,
        customer_id,
    )
    return [r[0] for r in rows]


async def aliases(conn: asyncpg.Connection, users: list[UserKey]) -> dict[UserKey, str]:
    """Only workspaces holding an alias are looked into: a plain batch costs one probe."""
    workspaces = sorted({ws for ws, _ in users})
    merged = {
        r[0]
        for r in await conn.fetch(
            "SELECT w FROM unnest($1::text[]) AS w "
            "WHERE EXISTS (SELECT FROM user_aliases WHERE workspace = w)",
            workspaces,
        )
    }
    wanted = [user for user in users if user[0] in merged]
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT a.workspace, a.alias, a.customer_id FROM user_aliases AS a "
        "JOIN unnest($1::text[], $2::text[]) AS k (w, c) ON a.workspace = k.w AND a.alias = k.c",
        [w for w, _ in wanted],
        [c for _, c in wanted],
    )
    return {(r[0], r[1]): r[2] for r in rows}


async def merged_on(
    conn: asyncpg.Connection, keys: list[IdentifierKey]
) -> dict[IdentifierKey, int]:
    rows = await conn.fetch(
        "SELECT k.w, k.n, k.v, count(*) FROM user_aliases AS a "
        "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (w, n, v) "
        "ON a.workspace = k.w AND a.via_name = k.n AND a.via_value = k.v GROUP BY k.w, k.n, k.v",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
    )
    return {(r[0], r[1], r[2]): int(r[3]) for r in rows}


async def merge(conn: asyncpg.Connection, merges: list[MergeWrite]) -> None:
    for m in merges:
        await _merge_one(conn, m)


async def _merge_one(conn: asyncpg.Connection, m: MergeWrite) -> None:
    ws, merged, retained, p = m.workspace_id, m.merged, m.retained, m.profile
    for sql in _REPOINT:
        await conn.execute(sql, retained, ws, merged)
    gone = await conn.fetchrow(
        "DELETE FROM users WHERE workspace = $1 AND customer_id = $2 "
        "RETURNING event_count, moengage_id",
        ws,
        merged,
    )
    count, moengage_id = (gone[0], gone[1]) if gone is not None else (0, None)
    via_name, via_value = m.via or (None, None)
    await conn.execute(
        "INSERT INTO user_aliases VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace, alias) "
        "DO UPDATE SET customer_id = excluded.customer_id, moengage_id = excluded.moengage_id, "
        "via_name = excluded.via_name, via_value = excluded.via_value",
        ws,
        merged,
        retained,
        moengage_id,
        via_name,
        via_value,
    )
    await conn.execute(
        "UPDATE users SET attributes = $1::jsonb, identifiers = $2::jsonb, first_seen = $3, "
        "last_seen = $4, event_count = event_count + $5 WHERE workspace = $6 AND customer_id = $7",
        _text(p.attributes),
        _text(p.identifiers),
        p.first_seen,
        p.last_seen,
        count + len(m.events),
        ws,
        retained,
    )
    if m.events:
        await conn.execute(
            "INSERT INTO events (event_id, workspace, customer_id, action, event_time, doc) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], "
            "$6::json[])",
            [e.event_id for e in m.events],
            [ws] * len(m.events),
            [retained] * len(m.events),
            [e.action for e in m.events],
            [e.current_time for e in m.events],
            [_text(e) for e in m.events],
        )


def _text(value: Any) -> str:
    return _encode(value).decode()
