"""The writes of `PostgresStore`'s EventStore half: a batch (`trackd.store.base.Batch`) as the
SQLite store does it, in PostgreSQL's SQL.

A batch is one transaction. Its `claim` first takes a transaction-level advisory lock per
workspace it touches (in one fixed order, so two nodes never deadlock): batches of one workspace
then commit in the order their events get `seq`, which is what newest-first paging and `tail`
need, no two transactions ever wait on each other's rows, and what a batch reads of profiles and
identifiers stays true until it commits. Plans whose request id is already in `processed` are
skipped (``INSERT … ON CONFLICT DO NOTHING RETURNING``); what the processor decided for the rest
goes as one bulk ``unnest`` upsert per table (one row per user, device, event name, ... per
batch), and the events as one binary ``COPY`` (no conflict to handle: `processed` already
decided; the rows in plan order, so `seq` follows the queue's order).

The monthly partitions of `events` a batch needs are created before its transaction
(`trackd.store.postgres_schema.ensure_partitions`); the reads are in `postgres_reads`. The SQL
function `trackd_merge_patch` of migration 0001 is no longer called: attributes and identifiers
merge in the processor (`trackd.processor.profiles`), and profiles are written as given.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import msgspec

from trackd.models import Plan
from trackd.store import postgres_deletes, postgres_devices, postgres_merge
from trackd.store.postgres_merge import DEVICE_CONFLICT
from trackd.store.postgres_schema import ensure_partitions
from trackd.store.records import (
    Changes,
    DeviceWrite,
    IdentifierKey,
    MergeWrite,
    Profile,
    ProfileWrite,
    Rollup,
    StoredDevice,
    UserKey,
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

#: The `pg_advisory_xact_lock(class, key)` class of the per-workspace locks ("trkw").
WORKSPACE_LOCK = 0x74726B77


def _lock_key(workspace: str) -> int:
    key = zlib.crc32(workspace.encode())
    return key - (1 << 32) if key >= 1 << 31 else key  # pg's int4


_PLAN_JSON = msgspec.json.Encoder()
_PLAN_DECODE = msgspec.json.Decoder(Plan)


def without_nul(plan: Plan) -> Plan:
    """PostgreSQL's text and jsonb cannot hold U+0000, which JSON (and SQLite) can: it becomes
    U+FFFD, so one such request never stalls the processor (its batch would fail forever)."""
    raw = _PLAN_JSON.encode(plan)
    if b"\\u0000" not in raw:
        return plan
    return _PLAN_DECODE.decode(raw.replace(b"\\u0000", b"\\ufffd"))


class PostgresBatch:
    """`trackd.store.base.Batch` on one pooled connection; `claim` begins the transaction,
    which `stack` commits when the batch's block exits cleanly and rolls back otherwise."""

    def __init__(self, conn: asyncpg.Connection, stack: AsyncExitStack, known: set[str]) -> None:
        self._conn = conn
        self._stack = stack
        self._partitions = known  # the store's monthly partitions known to exist

    async def claim(self, plans: list[Plan]) -> list[Plan]:
        conn = self._conn
        plans = [without_nul(plan) for plan in plans]
        await ensure_partitions(conn, self._partitions, plans)
        await self._stack.enter_async_context(conn.transaction())
        if not plans:  # the delete sweep's batch: no lock, no `processed` row to insert
            return []
        keys = sorted({_lock_key(p.workspace_id) for p in plans})
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k", WORKSPACE_LOCK, keys
        )
        first: dict[str, Plan] = {}
        for plan in plans:
            first.setdefault(plan.request_id, plan)
        claimed = {
            r[0]
            for r in await conn.fetch(
                "INSERT INTO processed SELECT * FROM unnest($1::text[], $2::text[]) "
                "ON CONFLICT DO NOTHING RETURNING request_id",
                list(first),
                [p.workspace_id for p in first.values()],
            )
        }
        return [p for p in first.values() if p.request_id in claimed]

    async def owners(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, str]:
        if not keys:
            return {}
        rows = await self._conn.fetch(
            "SELECT u.workspace, u.name, u.value, u.customer_id FROM user_identifiers AS u "
            "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (w, n, v) "
            "ON u.workspace = k.w AND u.name = k.n AND u.value = k.v",
            *_columns(keys, 3),
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}

    async def profiles(self, users: list[UserKey]) -> dict[UserKey, Profile]:
        if not users:
            return {}
        rows = await self._conn.fetch(
            "SELECT u.workspace, u.customer_id, u.attributes, u.identifiers, u.first_seen, "
            "u.last_seen FROM users AS u JOIN unnest($1::text[], $2::text[]) AS k (w, c) "
            "ON u.workspace = k.w AND u.customer_id = k.c",
            *_columns(users, 2),
        )
        return {(r[0], r[1]): Profile(_decode(r[2]), _decode(r[3]), r[4], r[5]) for r in rows}

    async def write(self, changes: Changes) -> None:
        conn = self._conn
        events = list(_event_rows(changes.plans))
        if events:
            await conn.copy_records_to_table("events", records=events, columns=_EVENT_COLUMNS)
        await _bulk(conn, _INSERT_IDENTIFIERS, changes.identifiers)
        await _write_profiles(conn, changes.profiles)
        await _write_rollup(conn, changes.rollup)
        await _write_issues(conn, changes.plans)

    # -- merges: `trackd.store.postgres_merge` --

    async def aliases(self, users: list[UserKey]) -> dict[UserKey, str]:
        return await postgres_merge.aliases(self._conn, users) if users else {}

    async def merged_on(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, int]:
        return await postgres_merge.merged_on(self._conn, keys) if keys else {}

    async def merge(self, merges: list[MergeWrite]) -> None:
        await postgres_merge.merge(self._conn, merges)

    # -- Track Device: `trackd.store.postgres_devices` --

    async def devices(self, users: list[UserKey]) -> dict[UserKey, list[StoredDevice]]:
        return await postgres_devices.devices(self._conn, users) if users else {}

    async def put_devices(self, writes: list[DeviceWrite]) -> None:
        if writes:
            await postgres_devices.put_devices(self._conn, writes)

    # -- Delete User: `trackd.store.postgres_deletes` --

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        return await postgres_deletes.live_user(self._conn, workspace_id, identity_type, value)

    async def schedule_delete(self, user: UserKey, request_id: str, due_at: int) -> None:
        await postgres_deletes.schedule_delete(self._conn, user, request_id, due_at)

    async def due_deletes(self, now_ms: int, limit: int) -> list[UserKey]:
        return await postgres_deletes.due_deletes(self._conn, now_ms, limit)

    async def hard_delete(self, users: list[UserKey]) -> int:
        if not users:
            return 0
        return await postgres_deletes.hard_delete(
            self._conn, users, lambda ws: (WORKSPACE_LOCK, _lock_key(ws))
        )

    # -- GDPR erasure: `trackd.store.postgres_deletes` --

    async def users_matching(self, workspace_id: str, identity_type: str, value: str) -> list[str]:
        return await postgres_deletes.users_matching(self._conn, workspace_id, identity_type, value)

    async def erase_issues(self, users: list[UserKey]) -> None:
        await postgres_deletes.erase_issues(self._conn, users)

    async def erase_recorded_requests(self, workspace_id: str, customer_ids: list[str]) -> None:
        """The request log's rows (`trackd.store.postgres_requests`, the same schema) naming
        these users, and its marks of them, in this batch's transaction."""
        if customer_ids:
            await postgres_deletes.erase_requests(self._conn, workspace_id, customer_ids)

    async def record_erasure(self, record: dict[str, object]) -> None:
        await postgres_deletes.record_erasure(self._conn, record)


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to the column arrays an ``unnest($1, $2, …)`` statement takes."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def _bulk(conn: asyncpg.Connection, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """One ``INSERT … SELECT * FROM unnest($1, …)`` of `rows` (as wide as `sql` has `$n`)."""
    columns = _columns(rows, sql.count("$"))
    if columns[0]:
        await conn.execute(sql, *columns)


#: The columns the batch's one ``COPY events`` fills (`seq` is the identity's).
_EVENT_COLUMNS = ("event_id", "workspace", "customer_id", "action", "event_time", "doc")
_INSERT_IDENTIFIERS = (
    "INSERT INTO user_identifiers SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[]) ON CONFLICT DO NOTHING"
)
_INSERT_ISSUES = (
    "INSERT INTO issues (workspace, request_id, action_index, attribute, reason, at) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int8[])"
)
_UPSERT_PROFILES = (
    "INSERT INTO users AS u (workspace, customer_id, attributes, identifiers, first_seen, "
    "last_seen) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], "
    "$5::int8[], $6::int8[]) ON CONFLICT (workspace, customer_id) DO UPDATE SET "
    "attributes = excluded.attributes, identifiers = excluded.identifiers, "
    "first_seen = excluded.first_seen, last_seen = excluded.last_seen"
)


def _event_rows(plans: list[Plan]) -> Iterable[tuple[Any, ...]]:
    """In plan order, so `seq` follows the queue's order."""
    for p in plans:
        for e in p.events:
            yield e.event_id, p.workspace_id, p.customer_id, e.action, e.current_time, _text(e)


def _text(value: Any) -> str:
    return _encode(value).decode()


async def _write_profiles(conn: asyncpg.Connection, rows: list[ProfileWrite]) -> None:
    """Sorted by user, as the rollup's rows are."""
    await _bulk(
        conn,
        _UPSERT_PROFILES,
        (
            (w, c, _text(p.attributes), _text(p.identifiers), p.first_seen, p.last_seen)
            for w, c, p in sorted(rows, key=lambda row: (row[0], row[1]))
        ),
    )


async def _write_issues(conn: asyncpg.Connection, plans: list[Plan]) -> None:
    await _bulk(
        conn,
        _INSERT_ISSUES,
        (
            (p.workspace_id, i.request_id, i.index, i.attribute, i.reason, i.at)
            for p in plans
            for i in p.issues
        ),
    )


_UPSERT_USERS = (
    "INSERT INTO users AS u (workspace, customer_id, first_seen, last_seen, event_count) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[]) "
    "ON CONFLICT (workspace, customer_id) DO UPDATE SET "
    "first_seen = least(u.first_seen, excluded.first_seen), "
    "last_seen = greatest(u.last_seen, excluded.last_seen), "
    "event_count = u.event_count + excluded.event_count"
)
_UPSERT_DEVICES = (
    "INSERT INTO devices AS d (workspace, customer_id, device_id, platform, app_version, "
    "first_seen, last_seen, last_ip) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::int8[], $7::int8[], $8::text[]) " + DEVICE_CONFLICT
)
_UPSERT_SCHEMA_EVENTS = (
    "INSERT INTO schema_events AS s SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], "
    "$4::int8[], $5::int8[]) ON CONFLICT (workspace, action) DO UPDATE SET "
    "count = s.count + excluded.count, first_seen = least(s.first_seen, excluded.first_seen), "
    "last_seen = greatest(s.last_seen, excluded.last_seen)"
)
_UPSERT_SCHEMA_ATTRIBUTES = (
    "INSERT INTO schema_attributes AS s SELECT * FROM unnest($1::text[], $2::text[], "
    "$3::text[], $4::text[], $5::int8[]) "
    "ON CONFLICT (workspace, action, attribute, type) DO UPDATE SET "
    "count = s.count + excluded.count"
)
_UPSERT_COUNTERS = (
    "INSERT INTO counters AS c SELECT * FROM unnest($1::text[], $2::text[], $3::int8[]) "
    "ON CONFLICT (workspace, name) DO UPDATE SET value = c.value + excluded.value"
)


async def _write_rollup(conn: asyncpg.Connection, r: Rollup) -> None:
    """One upsert per table; rows sorted by key so concurrent writers lock them in one order."""
    users = sorted(r.users.items())
    await _bulk(
        conn,
        _UPSERT_USERS,
        ((w, c, u.first_seen, u.last_seen, u.event_count) for (w, c), u in users),
    )
    await _bulk(
        conn,
        _UPSERT_DEVICES,
        (
            (w, c, d, v.platform, v.app_version, v.first_seen, v.last_seen, v.last_ip)
            for (w, c, d), v in sorted(r.devices.items())
        ),
    )
    names = sorted(r.event_names.items())
    await _bulk(conn, _UPSERT_SCHEMA_EVENTS, ((w, a, *seen) for (w, a), seen in names))
    attributes = sorted(r.attributes.items())
    await _bulk(conn, _UPSERT_SCHEMA_ATTRIBUTES, ((*key, n) for key, n in attributes))
    await add_counters(conn, r.counters)


async def add_counters(conn: asyncpg.Connection, counters: dict[tuple[str, str], int]) -> None:
    rows = sorted(counters.items())
    await _bulk(conn, _UPSERT_COUNTERS, ((w, name, n) for (w, name), n in rows))
