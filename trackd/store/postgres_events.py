"""The writes of `PostgresStore`'s EventStore half: a batch of plans, as the SQLite store does.

A batch is one transaction. It first takes a transaction-level advisory lock per workspace it
touches (in one fixed order, so two nodes never deadlock): batches of one workspace then commit
in the order their events get `seq`, which is what newest-first paging and `tail` need, and no
two transactions ever wait on each other's rows. Plans whose request id is already in
`processed` are skipped (``INSERT … ON CONFLICT DO NOTHING RETURNING``), the rest are rolled up
(`trackd.processor.rollup`) into one bulk ``unnest`` upsert per table.

The monthly partitions of `events` a batch needs are created before its transaction
(`trackd.store.postgres_schema.ensure_partitions`); the reads are in `postgres_reads`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import asyncpg
import msgspec

from trackd.models import Plan
from trackd.processor.rollup import Rollup, rollup

_encode = msgspec.json.Encoder().encode

#: The `pg_advisory_xact_lock(class, key)` class of the per-workspace locks ("trkw").
WORKSPACE_LOCK = 0x74726B77


# -- writes --------------------------------------------------------------------------------


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


async def apply(conn: asyncpg.Connection, plans: list[Plan]) -> None:
    plans = [without_nul(plan) for plan in plans]
    async with conn.transaction():
        keys = sorted({_lock_key(p.workspace_id) for p in plans})
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k", WORKSPACE_LOCK, keys
        )
        fresh = await _unprocessed(conn, plans)
        if not fresh:
            return
        resolved = await _resolve(conn, fresh)
        await _bulk(conn, _INSERT_EVENTS, _event_rows(resolved))
        await _write_profiles(conn, resolved)
        await _write_rollup(conn, rollup(resolved))
        await _bulk(
            conn,
            _INSERT_ISSUES,
            (
                (p.workspace_id, i.request_id, i.index, i.attribute, i.reason, i.at)
                for p in resolved
                for i in p.issues
            ),
        )


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


async def _unprocessed(conn: asyncpg.Connection, plans: list[Plan]) -> list[Plan]:
    """Claim the batch's request ids; a plan whose id was claimed before is skipped."""
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


async def _resolve(conn: asyncpg.Connection, plans: list[Plan]) -> list[Plan]:
    """Customer ids for the plans, looking identifiers up (Identity Resolution) in plan order,
    as SQLite does one plan at a time: the first identifier known wins, else the first one
    names the user; an identifier already taken keeps its customer."""
    keys = [(p.workspace_id, n, v) for p in plans for n, v in (p.identifiers or {}).items()]
    if not keys:
        return plans
    known: dict[tuple[str, str, str], str] = {
        (r[0], r[1], r[2]): r[3]
        for r in await conn.fetch(
            "SELECT u.workspace, u.name, u.value, u.customer_id FROM user_identifiers AS u "
            "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k (w, n, v) "
            "ON u.workspace = k.w AND u.name = k.n AND u.value = k.v",
            *_columns(keys, 3),
        )
    }
    added: list[tuple[str, str, str, str]] = []
    out = []
    for plan in plans:
        if plan.identifiers:
            plan = msgspec.structs.replace(plan, customer_id=_customer(plan, known, added))
        out.append(plan)
    await _bulk(
        conn,
        "INSERT INTO user_identifiers SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[]) ON CONFLICT DO NOTHING",
        added,
    )
    return out


def _customer(
    plan: Plan, known: dict[tuple[str, str, str], str], added: list[tuple[str, str, str, str]]
) -> str:
    ws, identifiers = plan.workspace_id, plan.identifiers or {}
    customer_id = plan.customer_id
    if customer_id is None:
        found = (known.get((ws, n, v)) for n, v in identifiers.items())
        customer_id = next((c for c in found if c is not None), None)
    if customer_id is None:
        name, value = next(iter(identifiers.items()))
        customer_id = f"{name}:{value}"
    for n, v in identifiers.items():
        if (ws, n, v) not in known:
            known[(ws, n, v)] = customer_id
            added.append((ws, n, v, customer_id))
    return customer_id


_INSERT_EVENTS = (
    "INSERT INTO events (event_id, workspace, customer_id, action, event_time, doc) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::json[])"
)
_INSERT_ISSUES = (
    "INSERT INTO issues (workspace, request_id, action_index, attribute, reason, at) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::int8[])"
)


def _event_rows(plans: list[Plan]) -> Iterable[tuple[Any, ...]]:
    """In plan order, so `seq` follows the queue's order."""
    for p in plans:
        for e in p.events:
            yield e.event_id, p.workspace_id, p.customer_id, e.action, e.current_time, _text(e)


def _text(value: Any) -> str:
    return _encode(value).decode()


_UPDATE_ATTRIBUTES = (
    "UPDATE users SET attributes = trackd_merge_patch(attributes, $3::jsonb) "
    "WHERE workspace = $1 AND customer_id = $2"
)
_UPSERT_PROFILE = (
    "INSERT INTO users AS u (workspace, customer_id, attributes, identifiers, first_seen, "
    "last_seen) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6) "
    "ON CONFLICT (workspace, customer_id) DO UPDATE SET "
    "attributes = trackd_merge_patch(u.attributes, excluded.attributes), "
    "identifiers = trackd_merge_patch(u.identifiers, excluded.identifiers), "
    "last_seen = greatest(u.last_seen, excluded.last_seen)"
)


async def _write_profiles(conn: asyncpg.Connection, plans: list[Plan]) -> None:
    """Track User plans set attributes; identifiers are remembered on the profile. In plan
    order: consecutive statements of one kind go as one pipelined `executemany`."""
    runs: list[tuple[str, list[tuple[Any, ...]]]] = []
    created: set[tuple[str, str | None]] = set()  # users created by the batch's earlier events
    for plan in plans:
        sql, args = _profile_change(plan, created)
        if not sql:
            continue
        if runs and runs[-1][0] == sql:
            runs[-1][1].append(args)
        else:
            runs.append((sql, [args]))
    for sql, rows in runs:
        await conn.executemany(sql, rows)


def _profile_change(
    plan: Plan, created: set[tuple[str, str | None]]
) -> tuple[str, tuple[Any, ...]]:
    """The statement and arguments of one plan's profile change ("" when it has none)."""
    if plan.kind == "customer" and plan.user_attributes is None:
        return "", ()  # a disallowed customer_id: no profile
    user = (plan.workspace_id, plan.customer_id)
    if plan.events:
        created.add(user)
    attributes = _text(plan.user_attributes or {})
    if plan.kind == "customer" and plan.update_existing_only and user not in created:
        return _UPDATE_ATTRIBUTES, (*user, attributes)
    if plan.kind == "customer" or plan.identifiers:
        # seen at its events' times (as without identifiers); a Track User update at receipt
        seen = [e.current_time for e in plan.events] or [plan.received_at]
        return _UPSERT_PROFILE, (
            *user,
            attributes,
            _text(plan.identifiers or {}),
            min(seen),
            max(seen),
        )
    return "", ()


_UPSERT_USERS = (
    "INSERT INTO users AS u (workspace, customer_id, first_seen, last_seen, event_count) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[]) "
    "ON CONFLICT (workspace, customer_id) DO UPDATE SET "
    "first_seen = least(u.first_seen, excluded.first_seen), "
    "last_seen = greatest(u.last_seen, excluded.last_seen), "
    "event_count = u.event_count + excluded.event_count"
)
_NEWER = "excluded.last_seen >= d.last_seen"
_UPSERT_DEVICES = (
    "INSERT INTO devices AS d SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
    "$4::text[], $5::text[], $6::int8[], $7::int8[], $8::text[]) "
    "ON CONFLICT (workspace, customer_id, device_id) DO UPDATE SET "
    "first_seen = least(d.first_seen, excluded.first_seen), "
    f"platform = CASE WHEN {_NEWER} THEN excluded.platform ELSE d.platform END, "
    f"app_version = CASE WHEN {_NEWER} THEN excluded.app_version ELSE d.app_version END, "
    f"last_ip = CASE WHEN {_NEWER} THEN excluded.last_ip ELSE d.last_ip END, "
    "last_seen = greatest(d.last_seen, excluded.last_seen)"
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
