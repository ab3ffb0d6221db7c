"""Track Device's half of `SQLiteBatch` (`trackd.store.base.Batch`: `devices`, `put_devices`),
data-api.md §1. Each runs on the store's thread, inside the batch's transaction."""

from __future__ import annotations

import sqlite3

import msgspec

from trackd.store.records import DeviceWrite, StoredDevice, UserKey

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

_PUT = (
    "INSERT INTO devices (workspace, customer_id, device_id, platform, app_version, first_seen, "
    "last_seen, last_ip, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workspace, customer_id, device_id) DO UPDATE SET "
    "platform = excluded.platform, app_version = coalesce(excluded.app_version, app_version), "
    "first_seen = min(first_seen, excluded.first_seen), "
    "last_seen = max(last_seen, excluded.last_seen), "
    "last_ip = coalesce(excluded.last_ip, last_ip), "
    "attributes = json_patch(attributes, excluded.attributes)"
)


def devices(conn: sqlite3.Connection, users: list[UserKey]) -> dict[UserKey, list[StoredDevice]]:
    found = {}
    for user in users:
        rows = conn.execute(
            "SELECT device_id, attributes, first_seen FROM devices "
            "WHERE workspace = ? AND customer_id = ? ORDER BY device_id",
            user,
        ).fetchall()
        if rows:
            found[user] = [StoredDevice(d, _decode(a), first) for d, a, first in rows]
    return found


def put_devices(conn: sqlite3.Connection, writes: list[DeviceWrite]) -> None:
    for w in writes:
        conn.executemany(
            "DELETE FROM devices WHERE workspace = ? AND customer_id = ? AND device_id = ?",
            [(w.workspace_id, w.customer_id, gone) for gone in w.replaces],
        )
        conn.execute(
            _PUT,
            (
                w.workspace_id,
                w.customer_id,
                w.device_id,
                w.platform,
                w.app_version,
                w.first_seen,
                w.last_seen,
                w.last_ip,
                _encode(w.attributes).decode(),
            ),
        )
