"""Every read the read API makes is index-bound: no full scan of any table, on either engine.

The reads run as the read API runs them (`trackd.store.sqlite_reads`, `postgres_reads`) on a
small filled store; every statement they send is recorded, then planned again with EXPLAIN. On
SQLite a plan step `SCAN <table>` (without an index search) fails the test; on PostgreSQL, with
sequential scans priced out (`enable_seqscan = off`, so the planner takes any index that can
serve), a `Seq Scan` step fails it: there was none to take. bench/reads.py measures the same
reads at 10 million events.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.contracts import postgres_db
from tests.services import needs_service
from trackd.models import Action, Envelope
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store import open_event_store, sqlite_reads
from trackd.store import postgres_reads as pg_reads
from trackd.store.base import FROM_END, EventQuery

WS = "PLANS"
T0 = 1_767_225_600_000  # 2026-01-01


async def fill(url: str) -> None:
    store = open_event_store(url)
    await store.open()
    try:
        plans = []
        for n in range(60):
            actions = [
                Action(
                    index=i,
                    action=f"Event {i % 4}",
                    attributes={"n": n, "name": "x"},
                    current_time=T0 + n * 1000 + i,
                    user_time=T0 + n * 1000 + i,
                    user_timezone_offset=0,
                )
                for i in range(5)
            ]
            envelope = Envelope(
                request_id=f"r{n}",
                workspace_id=WS,
                received_at=T0 + n * 1000,
                customer_id=f"u{n % 7}",
                device_id=f"d{n % 3}",
                actions=actions,
                user_identifiers={"email": f"u{n % 7}@example.com"},
                event_count=5,
            )
            plans.append(plan(envelope))
        await apply(store, plans)
    finally:
        await store.aclose()


def events(**filters: Any) -> Any:
    """The events read with these filters, as a call of a reads module with a connection."""
    return lambda m, c: m.events(c, EventQuery(workspace_id=WS, **filters))


def queries() -> list[tuple[str, Any]]:
    """(what, the read as a call of a reads module's function with the connection)."""
    return [
        ("profile", lambda m, c: m.user(c, WS, "u3")),
        ("profile of an unknown user", lambda m, c: m.user(c, WS, "nobody")),
        ("events", events()),
        ("events by customer", events(customer_id="u2")),
        ("events by name and time range", events(action="Event 1", since=T0, until=T0 + 30_000)),
        ("events, next page", events(before_seq=100)),
        ("tail: after a position", events(after_seq=10)),
        ("tail: where to start", events(after_seq=FROM_END)),
        ("schema", lambda m, c: m.schema(c, WS)),
        ("issues", lambda m, c: m.issues(c, WS, T0)),
        ("stats' counters", lambda m, c: m.counts(c, WS)),
    ]


SCAN = re.compile(r"\bSCAN (\w+)(?! USING (?:COVERING )?INDEX)")
EQUALS = re.compile(r"\b(\w+) = (?:'|\$|\?|\d)")  # `column = value` in a WHERE clause


def equalities(sql: str) -> set[str]:
    """The columns a statement pins to one value: an index must search on every one of them."""
    where = sql.partition(" WHERE ")[2]
    return set(EQUALS.findall(where))


@pytest.mark.parametrize(("what", "read"), queries(), ids=[w for w, _ in queries()])
def test_sqlite_reads_search_indexes(tmp_path: Path, what: str, read: Any) -> None:
    path = tmp_path / "trackd.db"
    asyncio.run(fill(f"sqlite:///{path}"))
    conn = sqlite3.connect(path)
    sent: list[str] = []
    conn.set_trace_callback(sent.append)  # each statement with its values bound
    read(sqlite_reads, conn)
    conn.set_trace_callback(None)
    assert sent, what
    for statement in sent:
        plan_rows = conn.execute("EXPLAIN QUERY PLAN " + statement).fetchall()
        steps = [detail for *_, detail in plan_rows]
        scans = [step for step in steps if SCAN.search(step)]
        assert not scans, f"{what}: {statement}\n{steps}"
        # A full scan of an index is a scan too: every step names a search or a temp b-tree.
        for step in steps:
            assert step.startswith(("SEARCH", "USE TEMP B-TREE", "SCAN CONSTANT")), (what, step)
        searched = " ".join(steps)
        for column in equalities(statement):
            assert f"{column}=?" in searched, f"{what}: no index on {column}: {steps}"
    conn.close()


class Recorder:
    """An asyncpg connection that remembers what it was asked (statement and arguments)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self.conn, name)

        async def call(sql: str, *args: Any) -> Any:
            self.sent.append((sql, args))
            return await method(sql, *args)

        return call


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = postgres_db.store_url()
    asyncio.run(fill(url))
    return url


@needs_service("PostgreSQL", postgres_db.available)
@pytest.mark.parametrize(("what", "read"), queries(), ids=[w for w, _ in queries()])
def test_postgres_reads_use_indexes(pg_url: str, what: str, read: Any) -> None:
    import asyncpg

    dsn, _, schema = pg_url.partition("?schema=")

    async def check() -> None:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            recorder = Recorder(conn)
            await read(pg_reads, recorder)
            assert recorder.sent, what
            await conn.execute("SET enable_seqscan = off")
            for sql, args in recorder.sent:
                rows = await conn.fetch("EXPLAIN " + sql, *args)
                steps = [row[0] for row in rows]
                assert not [s for s in steps if "Seq Scan" in s], f"{what}: {sql}\n{steps}"
                conditions = " ".join(s for s in steps if "Index Cond" in s)
                for column in equalities(sql):
                    assert f"({column} = " in conditions, f"{what}: no index on {column}: {steps}"
        finally:
            await conn.close()

    asyncio.run(check())
