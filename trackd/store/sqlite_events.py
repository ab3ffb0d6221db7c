"""The embedded EventStore: users, devices, events, schema and issues in the data dir's SQLite.

A batch (`trackd.store.base.Batch`) is one `BEGIN IMMEDIATE … COMMIT` on the store's one
connection, whose calls run one after another on the store's one thread: plans whose request id
is in `processed` are skipped, the rest become a few bulk upserts of what the processor decided.
Every other call waits for an open batch to end, so none sees its uncommitted rows. Events are
stored whole as JSON beside the columns the read API filters on. The reads' SQL is in
`sqlite_reads`, as PostgreSQL's is in `postgres_reads`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from trackd.embedded import connect
from trackd.errors import StoreError
from trackd.models import Plan
from trackd.store import sqlite_deletes, sqlite_devices, sqlite_merge
from trackd.store import sqlite_reads as reads
from trackd.store.base import EventQuery
from trackd.store.records import (
    Changes,
    DeviceWrite,
    IdentifierKey,
    IdentifierRow,
    MergeWrite,
    Profile,
    ProfileWrite,
    Rollup,
    StoredDevice,
    UserKey,
)
from trackd.store.sqlite_merge import DEVICE_CONFLICT
from trackd.store.sqlite_schema import migrate
from trackd.store.sqlite_wal import Checkpointer
from trackd.store.views import line_pages

T = TypeVar("T")
log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
CACHE_KIB = 65536  # the connection's page cache, at most
CHUNK = 500  # bound parameters of one `IN (…)`, well under SQLite's limit


class SQLiteEventStore:
    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._pool: ThreadPoolExecutor | None = None  # made by `open`, so a closed store reopens
        self._conn: sqlite3.Connection | None = None
        self._lock: asyncio.Lock | None = None  # held by an open batch, and by every other call
        self._checkpointer: Checkpointer | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreError("the event store is not open")
            return fn(self._conn)

        if self._pool is None:
            raise StoreError("the event store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except sqlite3.Error as exc:
            raise StoreError(f"event store at {self._path}: {exc}") from exc

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        if self._lock is None:
            raise StoreError("the event store is not open")
        async with self._lock:
            yield

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """`fn` on the connection once no batch is open (it would see the batch's rows)."""
        async with self._locked():
            return await self._run(fn)

    async def open(self) -> None:
        def opened() -> sqlite3.Connection:
            # FULL: a commit is on disk before the batch's block exits, hence before the
            # processor acknowledges the batch. With NORMAL it would wait for the next
            # checkpoint, while the queue's next group commit (FULL, the same WAL file) makes
            # the acknowledgement durable: a power loss in between would lose acknowledged
            # events. One fsync per batch (bounded by events, so large under load) costs next
            # to nothing.
            conn = connect(self._path, "FULL")
            # Batches upsert users, devices and `processed` rows and index events by random
            # keys: SQLite's default 2 MiB page cache re-reads those pages for every batch
            # (bench/processor.py: 1-event envelopes ~8% less CPU with 64 MiB at 200k events).
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            migrate(conn)
            if on_disk:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # `Checkpointer` does it
            return conn

        on_disk = str(self._path) != ":memory:"

        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-events")
        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._pool, opened)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the event store at {self._path}: {exc}") from exc
        self._lock = asyncio.Lock()
        if on_disk and self._checkpointer is None:
            self._checkpointer = Checkpointer(self._path)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        self._lock = None
        self._checkpointer = None  # a checkpoint queued runs before the close below
        if pool is None:
            return
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        pool.shutdown(wait=False)

    # -- writes -----------------------------------------------------------------------------

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[SQLiteBatch]:
        async with self._locked():
            batch = SQLiteBatch(self)
            try:
                yield batch
            except BaseException:
                if batch.begun:
                    with contextlib.suppress(StoreError):  # closed: nothing left to undo
                        await self._run(_rollback)
                raise
            if batch.begun:
                await self._run(_commit)
                pool, conn = self._pool, self._conn
                if self._checkpointer is not None and pool is not None and conn is not None:
                    self._checkpointer.after_commit(pool, conn)

    async def add_counts(self, counts: dict[tuple[str, str], int]) -> None:
        """Add to per-workspace counters (the edge's rejected requests, say)."""

        def add(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                _add_counters(conn, counts)

        if counts:
            await self._read(add)

    # -- reads ------------------------------------------------------------------------------

    async def user(self, workspace_id: str, customer_id: str) -> dict[str, Any] | None:
        return await self._read(lambda conn: reads.user(conn, workspace_id, customer_id))

    async def events(self, query: EventQuery) -> tuple[list[dict[str, Any]], int | None]:
        return await self._read(lambda conn: reads.events(conn, query))

    def event_lines(self, query: EventQuery) -> AsyncIterator[bytes]:
        """Each page's rows are one `_read` (a batch may commit between two pages)."""

        async def rows(q: EventQuery) -> Sequence[Sequence[Any]]:
            return await self._read(lambda conn: reads.event_rows(conn, q))

        return line_pages(rows, query)

    async def schema(self, workspace_id: str) -> dict[str, Any]:
        return await self._read(lambda conn: reads.schema(conn, workspace_id))

    async def issues(self, workspace_id: str, since: int | None) -> list[dict[str, Any]]:
        return await self._read(lambda conn: reads.issues(conn, workspace_id, since))

    async def counts(self, workspace_id: str) -> dict[str, int]:
        return await self._read(lambda conn: reads.counts(conn, workspace_id))

    # -- Delete User: `trackd.store.sqlite_deletes` --

    async def erasures(self, workspace_id: str) -> list[dict[str, object]]:
        return await self._read(lambda conn: sqlite_deletes.erasures(conn, workspace_id))

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        return await self._read(
            lambda conn: sqlite_deletes.live_user(conn, workspace_id, identity_type, value)
        )

    async def identifier_owner(self, workspace_id: str, name: str, value: str) -> str | None:
        return await self._read(
            lambda conn: reads.identifier_owner(conn, workspace_id, name, value)
        )

    # -- Live stream (issue 13 item 2) --

    async def request_warnings(
        self, workspace_id: str, request_ids: list[str], since: int, until: int
    ) -> dict[str, list[dict[str, Any]]]:
        return await self._read(
            lambda conn: reads.request_warnings(conn, workspace_id, request_ids, since, until)
        )


class SQLiteBatch:
    """`trackd.store.base.Batch` on the store's connection; `claim` begins the transaction."""

    def __init__(self, store: SQLiteEventStore) -> None:
        self._store = store
        self.begun = False

    async def claim(self, plans: list[Plan]) -> list[Plan]:
        self.begun = True
        return await self._store._run(lambda conn: _claim(conn, plans))

    async def owners(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, str]:
        if not keys:
            return {}
        return await self._store._run(lambda conn: _owners(conn, keys))

    async def profiles(self, users: list[UserKey]) -> dict[UserKey, Profile]:
        if not users:
            return {}
        return await self._store._run(lambda conn: _profiles(conn, users))

    async def write(self, changes: Changes) -> None:
        await self._store._run(lambda conn: _write(conn, changes))

    # -- merges: `trackd.store.sqlite_merge` --

    async def aliases(self, users: list[UserKey]) -> dict[UserKey, str]:
        if not users:
            return {}
        return await self._store._run(lambda conn: sqlite_merge.aliases(conn, users))

    async def merged_on(self, keys: list[IdentifierKey]) -> dict[IdentifierKey, int]:
        if not keys:
            return {}
        return await self._store._run(lambda conn: sqlite_merge.merged_on(conn, keys))

    async def merge(self, merges: list[MergeWrite]) -> None:
        await self._store._run(lambda conn: sqlite_merge.merge(conn, merges))

    # -- Track Device: `trackd.store.sqlite_devices` --

    async def devices(self, users: list[UserKey]) -> dict[UserKey, list[StoredDevice]]:
        if not users:
            return {}
        return await self._store._run(lambda conn: sqlite_devices.devices(conn, users))

    async def put_devices(self, writes: list[DeviceWrite]) -> None:
        if writes:
            await self._store._run(lambda conn: sqlite_devices.put_devices(conn, writes))

    # -- Delete User: `trackd.store.sqlite_deletes` --

    async def live_user(self, workspace_id: str, identity_type: str, value: str) -> str | None:
        return await self._store._run(
            lambda conn: sqlite_deletes.live_user(conn, workspace_id, identity_type, value)
        )

    async def schedule_delete(self, user: UserKey, request_id: str, due_at: int) -> None:
        await self._store._run(
            lambda conn: sqlite_deletes.schedule_delete(conn, user, request_id, due_at)
        )

    async def due_deletes(self, now_ms: int, limit: int) -> list[UserKey]:
        return await self._store._run(lambda conn: sqlite_deletes.due_deletes(conn, now_ms, limit))

    async def hard_delete(self, users: list[UserKey]) -> int:
        if not users:
            return 0
        return await self._store._run(lambda conn: sqlite_deletes.hard_delete(conn, users))

    # -- GDPR erasure: `trackd.store.sqlite_deletes` --

    async def users_matching(self, workspace_id: str, identity_type: str, value: str) -> list[str]:
        return await self._store._run(
            lambda conn: sqlite_deletes.users_matching(conn, workspace_id, identity_type, value)
        )

    async def erase_issues(self, users: list[UserKey]) -> None:
        await self._store._run(lambda conn: sqlite_deletes.erase_issues(conn, users))

    async def erase_recorded_requests(self, workspace_id: str, customer_ids: list[str]) -> None:
        """The request log's rows (`trackd.store.sqlite_requests`, the same database file)
        naming these users, and its marks of them, in this batch's transaction."""
        if customer_ids:
            await self._store._run(
                lambda conn: sqlite_deletes.erase_requests(conn, workspace_id, customer_ids)
            )

    async def record_erasure(self, record: dict[str, object]) -> None:
        await self._store._run(lambda conn: sqlite_deletes.record_erasure(conn, record))


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:  # a full disk, say: as `with conn:` does, leave nothing half open
        _rollback(conn)
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _claim(conn: sqlite3.Connection, plans: list[Plan]) -> list[Plan]:
    if conn.in_transaction:  # a batch cancelled before its COMMIT or ROLLBACK ran: not stored
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    first: dict[str, Plan] = {}  # each request id's first plan, in order
    for plan in plans:
        first.setdefault(plan.request_id, plan)
    # Usually none was stored before: then inserting them all is the whole claim, without a
    # look-up first. If one was, the transaction starts again and the stored ones are looked up.
    rows = [(r, p.workspace_id) for r, p in first.items()]
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO processed VALUES (?, ?)", rows)
    if conn.total_changes - before == len(rows):
        return list(first.values())
    conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")
    seen = _processed(conn, list(first))
    fresh = [p for r, p in first.items() if r not in seen]
    conn.executemany(
        "INSERT INTO processed VALUES (?, ?)", [(p.request_id, p.workspace_id) for p in fresh]
    )
    return fresh


def _processed(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    """The request ids of `ids` stored before."""
    seen: set[str] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        seen.update(
            r
            for (r,) in conn.execute(
                f"SELECT request_id FROM processed WHERE request_id IN ({marks})", chunk
            )
        )
    return seen


def _owners(conn: sqlite3.Connection, keys: list[IdentifierKey]) -> dict[IdentifierKey, str]:
    rows = _found(
        conn,
        "SELECT customer_id FROM user_identifiers WHERE workspace = ? AND name = ? AND value = ?",
        keys,
    )
    return {key: customer_id for key, (customer_id,) in rows.items()}


def _profiles(conn: sqlite3.Connection, users: list[UserKey]) -> dict[UserKey, Profile]:
    rows = _found(
        conn,
        "SELECT attributes, identifiers, first_seen, last_seen FROM users "
        "WHERE workspace = ? AND customer_id = ?",
        users,
    )
    return {
        user: Profile(_decode(attributes), _decode(identifiers), first, last)
        for user, (attributes, identifiers, first, last) in rows.items()
    }


K = TypeVar("K", bound=tuple[str, ...])


def _found(conn: sqlite3.Connection, sql: str, keys: list[K]) -> dict[K, tuple[Any, ...]]:
    """The row `sql` finds for each key (its parameters), for the keys it finds one for: one
    indexed lookup each, on this thread, which is as fast as SQLite gets."""
    found = {}
    for key in keys:
        row = conn.execute(sql, key).fetchone()
        if row is not None:
            found[key] = row
    return found


def _write(conn: sqlite3.Connection, changes: Changes) -> None:
    plans = changes.plans
    conn.executemany(
        "INSERT INTO events (event_id, workspace, customer_id, action, event_time, "
        "doc) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (e.event_id, p.workspace_id, p.customer_id, e.action, e.current_time, _encode(e))
            for p in plans
            for e in p.events
        ],
    )
    _write_identifiers(conn, changes.identifiers)
    _write_profiles(conn, changes.profiles)
    _write_rollup(conn, changes.rollup)
    conn.executemany(
        "INSERT INTO issues (workspace, request_id, action_index, attribute, reason, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (p.workspace_id, i.request_id, i.index, i.attribute, i.reason, i.at)
            for p in plans
            for i in p.issues
        ],
    )


def _write_identifiers(conn: sqlite3.Connection, rows: list[IdentifierRow]) -> None:
    conn.executemany("INSERT OR IGNORE INTO user_identifiers VALUES (?, ?, ?, ?)", rows)


def _write_profiles(conn: sqlite3.Connection, rows: list[ProfileWrite]) -> None:
    conn.executemany(
        "INSERT INTO users (workspace, customer_id, attributes, identifiers, first_seen, "
        "last_seen) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workspace, customer_id) DO UPDATE "
        "SET attributes = excluded.attributes, identifiers = excluded.identifiers, "
        "first_seen = excluded.first_seen, last_seen = excluded.last_seen",
        [
            (
                ws,
                customer_id,
                _encode(p.attributes).decode(),
                _encode(p.identifiers).decode(),
                p.first_seen,
                p.last_seen,
            )
            for ws, customer_id, p in rows
        ],
    )


def _write_rollup(conn: sqlite3.Connection, r: Rollup) -> None:
    conn.executemany(
        "INSERT INTO users (workspace, customer_id, first_seen, last_seen, event_count) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (workspace, customer_id) DO UPDATE SET "
        "first_seen = min(first_seen, excluded.first_seen), "
        "last_seen = max(last_seen, excluded.last_seen), "
        "event_count = event_count + excluded.event_count",
        [(ws, c, u.first_seen, u.last_seen, u.event_count) for (ws, c), u in r.users.items()],
    )
    conn.executemany(
        "INSERT INTO devices (workspace, customer_id, device_id, platform, app_version, "
        "first_seen, last_seen, last_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?) " + DEVICE_CONFLICT,
        [
            (ws, c, d, v.platform, v.app_version, v.first_seen, v.last_seen, v.last_ip)
            for (ws, c, d), v in r.devices.items()
        ],
    )
    conn.executemany(
        "INSERT INTO schema_events VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (workspace, action) DO UPDATE SET count = count + excluded.count, "
        "first_seen = min(first_seen, excluded.first_seen), "
        "last_seen = max(last_seen, excluded.last_seen)",
        [(ws, a, n, first, last) for (ws, a), (n, first, last) in r.event_names.items()],
    )
    conn.executemany(
        "INSERT INTO schema_attributes VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (workspace, action, attribute, type) DO UPDATE SET "
        "count = count + excluded.count",
        [(*key, n) for key, n in r.attributes.items()],
    )
    _add_counters(conn, r.counters)


def _add_counters(conn: sqlite3.Connection, counters: dict[tuple[str, str], int]) -> None:
    conn.executemany(
        "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (workspace, name) "
        "DO UPDATE SET value = value + excluded.value",
        [(ws, name, n) for (ws, name), n in counters.items()],
    )
