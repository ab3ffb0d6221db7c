"""Track Device's half of `PostgresBatch` (`trackd.store.base.Batch`: `devices`,
`put_devices`), data-api.md §1, as SQLite's (`sqlite_devices`) in PostgreSQL's SQL. A batch
holds its workspaces' advisory locks (`postgres_events`), so nothing below races another node."""

from __future__ import annotations

import asyncpg
import msgspec

from trackd.store.records import DeviceWrite, StoredDevice, UserKey

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

_PUT = (
    "INSERT INTO devices AS d (workspace, customer_id, device_id, platform, app_version, "
    "first_seen, last_seen, last_ip, attributes) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) "
    "ON CONFLICT (workspace, customer_id, device_id) DO UPDATE SET "
    "platform = excluded.platform, app_version = coalesce(excluded.app_version, d.app_version), "
    "first_seen = least(d.first_seen, excluded.first_seen), "
    "last_seen = greatest(d.last_seen, excluded.last_seen), "
    "last_ip = coalesce(excluded.last_ip, d.last_ip), "
    "attributes = d.attributes || excluded.attributes"
)


async def devices(
    conn: asyncpg.Connection, users: list[UserKey]
) -> dict[UserKey, list[StoredDevice]]:
    rows = await conn.fetch(
        "SELECT d.workspace, d.customer_id, d.device_id, d.attributes, d.first_seen "
        "FROM devices AS d JOIN unnest($1::text[], $2::text[]) AS k (w, c) "
        'ON d.workspace = k.w AND d.customer_id = k.c ORDER BY d.device_id COLLATE "C"',
        [w for w, _ in users],
        [c for _, c in users],
    )
    found: dict[UserKey, list[StoredDevice]] = {}
    for r in rows:
        found.setdefault((r[0], r[1]), []).append(StoredDevice(r[2], _decode(r[3]), r[4]))
    return found


async def put_devices(conn: asyncpg.Connection, writes: list[DeviceWrite]) -> None:
    for w in writes:
        if w.replaces:
            await conn.execute(
                "DELETE FROM devices WHERE workspace = $1 AND customer_id = $2 "
                "AND device_id = ANY($3::text[])",
                w.workspace_id,
                w.customer_id,
                list(w.replaces),
            )
        await conn.execute(
            _PUT,
            w.workspace_id,
            w.customer_id,
            w.device_id,
            w.platform,
            w.app_version,
            w.first_seen,
            w.last_seen,
            w.last_ip,
            _encode(w.attributes).decode(),
        )
