"""The PostgreSQL schema: versioned migrations, and the monthly partitions of `events`.

Migrations are the files ``migrations/postgres/NNNN_name.sql``, applied in order, each once (the
`schema_migrations` table records it) and each in one transaction that first takes an advisory
lock, so nodes starting together apply each file exactly once and wait for one another.

Partitions: `events` is partitioned by month of `current_time` (epoch ms). The partition a month
needs is created on the fly before the first batch holding such an event, in a short
transaction of its own: creating a partition locks the whole `events` table, so it must not
wait inside a batch's transaction. Months outside `PARTITIONED_YEARS` go to `events_default`;
since that range is fixed, no row in the default partition ever belongs to a month that gets a
partition later (PostgreSQL would refuse to create it).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from trackd.models import Plan
from trackd.store.migrations import migrations as versions

#: `pg_advisory_xact_lock(class, key)` classes: "trkm" migrations, "trkp" partition DDL.
MIGRATE_LOCK = 0x74726B6D
PARTITION_LOCK = 0x74726B70
#: Months of these years get their own partition; any other time goes to `events_default`.
PARTITIONED_YEARS = range(2000, 2100)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration, in order."""
    return versions("postgres")


async def migrate(conn: asyncpg.Connection, schema: str | None) -> list[str]:
    """Apply the migrations not applied yet; returns the names of those applied now."""
    applied = []
    for version, name, sql in migrations():
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", MIGRATE_LOCK)
            if schema is not None:  # checked by the caller: letters, digits, underscores
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(_BOOKKEEPING)
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
        applied.append(name)
    return applied


def partition_of(epoch_ms: int) -> tuple[str, int, int] | None:
    """The monthly partition holding `epoch_ms`: name and bounds in ms, or None (the default)."""
    t = _EPOCH + timedelta(milliseconds=epoch_ms)
    if t.year not in PARTITIONED_YEARS:
        return None
    start = datetime(t.year, t.month, 1, tzinfo=UTC)
    end = datetime(t.year + t.month // 12, t.month % 12 + 1, 1, tzinfo=UTC)
    return f"events_{t.year}_{t.month:02d}", _ms(start), _ms(end)


def _ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


async def ensure_partitions(conn: asyncpg.Connection, known: set[str], plans: list[Plan]) -> None:
    """Create the monthly partitions `plans` need; `known` remembers those seen to exist."""
    plans = [part for p in plans for part in (p.parts or [p])]  # Bulk Import: its parts'
    # months are whole UTC days: one `partition_of` per distinct day, not one per event
    days = {e.current_time // DAY_MS for p in plans for e in p.events}
    wanted = {partition_of(day * DAY_MS) for day in days}
    # A merge stores its own events at the receive time of the plan that made it
    # (`trackd.processor.merge`): a Merge Users plan, or an Identity Resolution plan that ties.
    wanted.update(partition_of(p.received_at) for p in plans if p.merges or p.identifiers)
    needed = sorted(p for p in wanted if p is not None and p[0] not in known)
    if not needed:
        return
    names = [name for name, _, _ in needed]
    rows = await conn.fetch(
        "SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NULL", names
    )
    missing = {r[0] for r in rows}
    if missing:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, 0)", PARTITION_LOCK)
            for name, low, high in needed:
                if name in missing:  # names and bounds are ours: digits and underscores only
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF events "
                        f"FOR VALUES FROM ({low}) TO ({high})"
                    )
    known.update(names)
