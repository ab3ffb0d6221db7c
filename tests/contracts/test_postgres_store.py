"""What the PostgreSQL store promises beyond the two contract suites it runs in: versioned
migrations that nodes may run at once, monthly partitions of `events`, several nodes writing
and reading one database, the same results as the embedded store, and its URL and errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.contracts import postgres_db
from tests.factories import without_moengage_id
from tests.services import needs_service
from trackd.errors import ConfigError, MissingDriver, NotFound, StoreError
from trackd.models import Action, Envelope, Plan, Warning, Workspace
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store import migrate, open_event_store, open_workspace_store
from trackd.store.base import EventQuery, EventStore

pytestmark = pytest.mark.anyio
postgres = needs_service("postgresql", postgres_db.available)

JAN_31_LAST_MS = 1_706_745_599_999  # 2024-01-31T23:59:59.999Z
FEB_1 = 1_706_745_600_000  # 2024-02-01T00:00:00.000Z
MAR_1 = 1_709_251_200_000  # 2024-03-01T00:00:00.000Z
YEAR_1990 = 631_152_000_000  # 1990-01-01T00:00:00.000Z: before the partitioned years

#: Every PostgreSQL migration, in order, as `trackd migrate` names them.
MIGRATIONS = [
    "0001_schema.sql",
    "0002_moengage_id.sql",
    "0003_merge.sql",
    "0004_devices.sql",  # Track Device (wt-device)
    "0005_deletes.sql",  # Delete User (wt-delete)
    "0006_request_log.sql",  # issue 13: the request log
    "0007_events_by_action_time.sql",
    "0008_request_log_erased.sql",  # an erasure's marks beside the request log
]


def store(url: str) -> Any:
    from trackd.store.postgres import PostgresStore

    return PostgresStore(url)


async def sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of `query` run in the store's schema, as an operator would look with psql."""
    import asyncpg

    from trackd.store.postgres import parse_url

    dsn, schema, _ = parse_url(url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
    try:
        return [tuple(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


def envelope(request_id: str, *times: int, **fields: Any) -> Envelope:
    """An envelope of WS1 for customer 123 with one "Viewed" action per time (epoch ms)."""
    actions = [
        Action(
            index=i,
            action="Viewed",
            attributes={"n": i},
            current_time=at,
            user_time=at,
            user_timezone_offset=0,
        )
        for i, at in enumerate(times)
    ]
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": MAR_1,
        "customer_id": "123",
        "device_id": None,
        "actions": actions,
        "client_ip": "198.51.100.7",
    }
    values.update(fields)
    return Envelope(**values)


@pytest.fixture
def url() -> str:
    return postgres_db.store_url()


@pytest.fixture
async def node(url: str) -> AsyncIterator[Any]:
    s = store(url)
    await s.open()
    yield s
    await s.aclose()


@pytest.fixture
async def other_node(url: str, node: Any) -> AsyncIterator[Any]:
    s = store(url)
    await s.open()
    yield s
    await s.aclose()


# -- migrations ------------------------------------------------------------------------------


@postgres
async def test_migrate_applies_each_migration_once_then_reports_nothing_to_do(url: str) -> None:
    s = store(url)
    assert await s.migrate() == MIGRATIONS
    assert await s.migrate() == []
    await s.open()  # open migrates too: nothing left
    try:
        assert await s.migrate() == []
        assert await s.list() == []
    finally:
        await s.aclose()
    rows = await sql(url, "SELECT version, name FROM schema_migrations")
    assert rows == [(int(name[:4]), name) for name in MIGRATIONS]


@postgres
async def test_nodes_migrating_at_once_apply_each_migration_exactly_once(url: str) -> None:
    results = await asyncio.gather(*(store(url).migrate() for _ in range(4)))
    # each migration applied by exactly one node (not always the same one)
    assert sorted(name for applied in results for name in applied) == MIGRATIONS
    versions = await sql(url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(int(name[:4]),) for name in MIGRATIONS]
    nodes = [store(url) for _ in range(3)]
    await asyncio.gather(*(n.open() for n in nodes))
    try:
        await nodes[0].create(Workspace(id="WS1", name="Shop", key_hash=None))
        assert await nodes[2].list() == [Workspace(id="WS1", name="Shop", key_hash=None)]
    finally:
        await asyncio.gather(*(n.aclose() for n in nodes))


@postgres
async def test_trackd_migrate_creates_the_tables_then_says_the_store_is_up_to_date(
    url: str,
) -> None:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "trackd", "migrate", "--store", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = await asyncio.to_thread(run)
    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        "".join(f"applied {m}\n" for m in MIGRATIONS),
        "",
    )
    again = await asyncio.to_thread(run)
    assert (again.returncode, again.stdout, again.stderr) == (0, "the store is up to date\n", "")
    assert await sql(url, "SELECT count(*) FROM workspaces") == [(0,)]


@postgres
async def test_without_a_schema_the_tables_go_to_the_databases_default_schema() -> None:
    url = postgres_db.database_url()  # the only test using the session database's `public`
    assert "schema=" not in url
    assert await migrate(url) == MIGRATIONS
    assert await migrate(url) == []
    rows = await sql(
        url + "?schema=public", "SELECT to_regclass('public.events')::text, current_schema()"
    )
    assert rows == [("events", "public")]


# -- partitions ------------------------------------------------------------------------------


@postgres
async def test_events_land_in_the_partition_of_their_month(url: str, node: Any) -> None:
    await apply(
        node,
        [
            plan(envelope("r1", JAN_31_LAST_MS, FEB_1)),
            plan(envelope("r2", FEB_1 + 1, YEAR_1990, MAR_1 - 1)),
        ],
    )
    partitions = await sql(
        url,
        "SELECT c.relname::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    )
    assert partitions == [("events_2024_01",), ("events_2024_02",), ("events_default",)]
    rows = await sql(url, "SELECT tableoid::regclass::text, event_id FROM events ORDER BY event_id")
    assert rows == [
        ("events_2024_01", "r1-0"),
        ("events_2024_02", "r1-1"),
        ("events_2024_02", "r2-0"),
        ("events_default", "r2-1"),
        ("events_2024_02", "r2-2"),
    ]
    events, cursor = await node.events(EventQuery(workspace_id="WS1"))
    assert [e["event_id"] for e in events] == ["r2-2", "r2-1", "r2-0", "r1-1", "r1-0"]
    assert cursor is None
    since_feb, _ = await node.events(EventQuery(workspace_id="WS1", since=FEB_1, until=MAR_1))
    assert [e["event_id"] for e in since_feb] == ["r2-2", "r2-0", "r1-1"]


@postgres
async def test_two_nodes_needing_the_same_new_month_at_once_both_store_their_events(
    url: str, node: Any, other_node: Any
) -> None:
    await asyncio.gather(
        apply(node, [plan(envelope("a", MAR_1, MAR_1 + 1))]),
        apply(other_node, [plan(envelope("b", MAR_1 + 2))]),
    )
    rows = await sql(
        url, "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1"
    )
    assert rows == [("events_2024_03", 3)]
    # a node that has not seen the month yet finds the partition the others made
    late = store(url)
    await late.open()
    try:
        await apply(late, [plan(envelope("c", MAR_1 + 3))])
    finally:
        await late.aclose()
    assert await node.counts("WS1") == {"processed_events": 4}


# -- several nodes ---------------------------------------------------------------------------


@postgres
async def test_the_same_batch_applied_by_two_nodes_at_once_is_stored_once(
    node: Any, other_node: Any
) -> None:
    batch = [plan(envelope(f"r{i}", FEB_1 + i)) for i in range(20)]
    await asyncio.gather(apply(node, batch), apply(other_node, list(reversed(batch))))
    assert await node.counts("WS1") == {"processed_events": 20}
    events, _ = await node.events(EventQuery(workspace_id="WS1", limit=1000))
    assert sorted(e["event_id"] for e in events) == sorted(f"r{i}-0" for i in range(20))
    user = await other_node.user("WS1", "123")
    assert user is not None and user["event_count"] == 20


@postgres
async def test_nodes_writing_the_same_users_at_once_lose_no_update(
    node: Any, other_node: Any
) -> None:
    def batch(prefix: str, order: list[str]) -> list[Plan]:
        return [
            plan(envelope(f"{prefix}-{ws}-{c}", FEB_1, workspace_id=ws, customer_id=c))
            for ws in order
            for c in order
        ]

    await asyncio.gather(
        *(apply(node, batch(f"a{i}", ["WS1", "WS2", "WS3"])) for i in range(5)),
        *(apply(other_node, batch(f"b{i}", ["WS3", "WS2", "WS1"])) for i in range(5)),
    )
    for ws in ("WS1", "WS2", "WS3"):
        assert await node.counts(ws) == {"processed_events": 30}
        user = await other_node.user(ws, "WS2")
        assert user is not None and user["event_count"] == 10
        events, _ = await node.events(EventQuery(workspace_id=ws, limit=100))
        assert len({e["event_id"] for e in events}) == 30


async def _waiting_for_a_lock(url: str) -> bool:
    rows = await sql(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return rows[0][0] > 0


@postgres
async def test_a_follower_misses_no_event_of_batches_committing_out_of_order(
    url: str, node: Any, other_node: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node 1 stalls inside its batch's transaction (after its events got their `seq`) while
    node 2 applies a later batch of the same workspace. Pausing a real write from the inside
    is the only way to provoke this interleaving; nothing is replaced."""
    from trackd.store import postgres_events

    paused, resume = asyncio.Event(), asyncio.Event()
    write_issues = postgres_events._write_issues

    async def stalling(conn: Any, plans: list[Plan]) -> None:
        if plans[0].request_id == "slow":
            paused.set()
            await resume.wait()
        await write_issues(conn, plans)

    monkeypatch.setattr(postgres_events, "_write_issues", stalling)
    slow = asyncio.create_task(apply(node, [plan(envelope("slow", FEB_1))]))
    await asyncio.wait_for(paused.wait(), 10)
    fast = asyncio.create_task(apply(other_node, [plan(envelope("fast", FEB_1 + 1))]))
    deadline = asyncio.get_running_loop().time() + 10
    while not fast.done() and not await _waiting_for_a_lock(url):
        assert asyncio.get_running_loop().time() < deadline, "node 2 neither ran nor waited"
        await asyncio.sleep(0.01)
    seen, cursor = await node.events(EventQuery(workspace_id="WS1", after_seq=0))
    resume.set()
    await asyncio.gather(slow, fast)
    later, _ = await node.events(EventQuery(workspace_id="WS1", after_seq=cursor or 0))
    assert [e["event_id"] for e in seen + later] == ["slow-0", "fast-0"]


@postgres
async def test_a_workspace_change_on_one_node_is_seen_by_another(
    node: Any, other_node: Any
) -> None:
    start = await other_node.revision()
    await node.create(Workspace(id="WS1", name="Shop", key_hash="a" * 64))
    created = await other_node.revision()
    assert created != start
    assert await other_node.get("WS1") == Workspace(id="WS1", name="Shop", key_hash="a" * 64)
    await node.save(Workspace(id="WS1", name="Shop", key_hash=None, suspended=True))
    assert await other_node.revision() not in (start, created)
    assert await other_node.get("WS1") == Workspace(
        id="WS1", name="Shop", key_hash=None, suspended=True
    )
    with pytest.raises(ConfigError, match="WS1"):
        await other_node.create(Workspace(id="WS1", name="Again", key_hash=None))
    with pytest.raises(NotFound, match="WS2"):
        await other_node.save(Workspace(id="WS2", name="Nobody", key_hash=None))


# -- the same results as the embedded store --------------------------------------------------


def _history() -> list[list[Plan]]:
    """Batches mixing events, devices, Identity Resolution, Track User (nested attributes,
    update_existing_only) and warnings."""
    ident = {"email": "ada@example.com"}
    return [
        [
            plan(envelope("e1", FEB_1, FEB_1 + 5, device_id="d1")),
            plan(
                Envelope(
                    request_id="u1",
                    workspace_id="WS1",
                    received_at=FEB_1 + 10,
                    customer_id="123",
                    device_id=None,
                    actions=[],
                    kind="customer",
                    user_attributes={"plan": "pro", "address": {"city": "Oslo", "zip": "0150"}},
                )
            ),
            plan(envelope("e2", FEB_1 + 1, customer_id=None, user_identifiers=ident)),
        ],
        [
            plan(
                Envelope(
                    request_id="u2",
                    workspace_id="WS1",
                    received_at=FEB_1 + 20,
                    customer_id="123",
                    device_id=None,
                    actions=[],
                    kind="customer",
                    user_attributes={"address": {"city": "Bergen"}, "tags": ["a", "b"]},
                    update_existing_only=True,
                )
            ),
            plan(
                Envelope(
                    request_id="u3",
                    workspace_id="WS1",
                    received_at=FEB_1 + 30,
                    customer_id="nobody",
                    device_id=None,
                    actions=[],
                    kind="customer",
                    user_attributes={"plan": "free"},
                    update_existing_only=True,
                )
            ),
            plan(
                envelope(
                    "e3",
                    FEB_1 - 7,
                    device_id="d1",
                    client_ip="203.0.113.9",
                    warnings=[Warning(1, "reserved_prefix", "moe_x")],
                )
            ),
            plan(envelope("e4", FEB_1 + 2, customer_id=None, user_identifiers=ident)),
            plan(envelope("e1", FEB_1)),  # a redelivery
            plan(
                Envelope(
                    request_id="u4",
                    workspace_id="WS1",
                    received_at=FEB_1 + 40,
                    customer_id="blocked",
                    device_id=None,
                    actions=[],
                    kind="customer",
                    user_attributes=None,  # what the edge sends for a disallowed customer_id
                )
            ),
        ],
    ]


async def _snapshot(s: EventStore) -> dict[str, Any]:
    return {
        "users": [  # moengage_ids are random: each store makes its own
            user and without_moengage_id(user)
            for user in [
                await s.user("WS1", c)
                for c in ("123", "email:ada@example.com", "nobody", "blocked")
            ]
        ],
        "events": await s.events(EventQuery(workspace_id="WS1")),
        "schema": await s.schema("WS1"),
        "issues": await s.issues("WS1", None),
        "counts": await s.counts("WS1"),
    }


@postgres
async def test_a_mixed_history_reads_back_exactly_as_from_the_embedded_store(node: Any) -> None:
    embedded = open_event_store("memory://")
    await embedded.open()
    try:
        for batch in _history():
            await apply(embedded, batch)
            await apply(node, batch)
        expected = await _snapshot(embedded)
    finally:
        await embedded.aclose()
    assert await _snapshot(node) == expected
    # and what is in it, checked by hand where PostgreSQL's SQL differs most from SQLite's
    user = expected["users"][0]
    assert user["attributes"] == {
        "plan": "pro",
        "address": {"city": "Bergen", "zip": "0150"},
        "tags": ["a", "b"],
    }
    assert (user["event_count"], user["devices"][0]["last_ip"]) == (3, "198.51.100.7")
    assert expected["users"][1]["event_count"] == 2
    assert expected["users"][2:] == [None, None]


# -- URL, driver and errors ------------------------------------------------------------------


def test_both_registries_open_a_postgres_store_for_either_scheme() -> None:
    from trackd.store.postgres import PostgresStore

    for url in ("postgresql://u@db.example:6543/trackd", "postgres://u@db.example/trackd"):
        assert isinstance(open_workspace_store(url), PostgresStore)
        assert isinstance(open_event_store(url), PostgresStore)
    assert open_event_store("postgres://u:secret@db.example/trackd?schema=t1").where == (
        "db.example:5432/trackd?schema=t1"
    )


@pytest.mark.parametrize("schema", ["a-b", "x;drop", "1abc", ""])
def test_a_schema_that_is_not_a_plain_name_is_a_config_error(schema: str) -> None:
    with pytest.raises(ConfigError, match="schema="):
        open_event_store(f"postgresql://u@db.example/trackd?schema={schema}")


async def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    s = store("postgresql://postgres@127.0.0.1:1/trackd")
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/trackd"):
        await s.open()
    with pytest.raises(StoreError, match="not open"):
        await s.revision()
    with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/trackd"):
        await s.migrate()
    await s.aclose()


def test_without_asyncpg_the_error_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in ("postgres", "postgres_events", "postgres_reads", "postgres_schema"):
        monkeypatch.delitem(sys.modules, f"trackd.store.{module}", raising=False)
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what `import asyncpg` finds: nothing
    for opener in (open_workspace_store, open_event_store):
        with pytest.raises(MissingDriver, match=r"pip install 'trackd\[postgres\]'"):
            opener("postgresql://postgres@127.0.0.1/test")


@needs_service("postgresql", postgres_db.available)
async def test_a_nul_character_never_stalls_the_postgres_store() -> None:
    """PostgreSQL refuses U+0000 in text and jsonb; the store writes U+FFFD instead, so one
    such request is stored (and readable) rather than failing its batch forever."""
    from trackd.models import Action, Envelope
    from trackd.processor.plan import plan
    from trackd.store.postgres import PostgresStore

    store = PostgresStore(postgres_db.store_url())
    await store.open()
    try:
        envelope = Envelope(
            request_id="nul1",
            workspace_id="WS1",
            received_at=1_708_939_453_396,
            customer_id="a\x00b",
            device_id="a\x00b",
            actions=[
                Action(
                    index=0,
                    action="Bad\x00Name",
                    attributes={"k\x00": "v\x00"},
                    current_time=1_708_939_453_396,
                    user_time=1_708_939_453_396,
                    user_timezone_offset=0,
                )
            ],
        )
        await apply(store, [plan(envelope)])
        user = await store.user("WS1", "a\x00b")
        assert user is not None and user["customer_id"] == "a\ufffdb"
        assert user["event_count"] == 1
        assert (await store.counts("WS1"))["processed_events"] == 1
    finally:
        await store.aclose()
