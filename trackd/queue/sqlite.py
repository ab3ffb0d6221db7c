"""The embedded durable queue: an append-only log in a SQLite WAL file with group commit.

Every put joins the batch that the single writer thread commits next; one `COMMIT` (one fsync,
`synchronous=FULL` in WAL mode) makes the whole batch durable, and only then are the puts'
futures resolved, so a 200 never precedes the fsync. Several processes may share the file:
SQLite serialises their writers. Consumers keep their committed position in the same file; rows
every consumer has passed are deleted, and SQLite reuses their pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from trackd.embedded import connect
from trackd.errors import QueueUnavailable
from trackd.models import Envelope
from trackd.queue.base import UNKNOWN, Backlog, Delivery

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    workspace TEXT NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dedupe (
    request_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    fingerprint TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consumers (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY);
"""

POLL_SECONDS = 0.02  # how often a consumer looks for other processes' appends
RECLAIM_EVERY = 64  # acks between deletes of consumed rows
MAX_BATCH = 4096

#: id, workspace, events, received, body, idempotent, fingerprint
_Item = tuple[str, str, int, int, bytes, bool, str]


class SQLiteQueue:
    def __init__(
        self, path: str | Path, *, max_pending: int = 20000, dedupe_seconds: float = 86400.0
    ) -> None:
        self._path = Path(path)
        self._max_pending = max_pending
        self._dedupe_seconds = dedupe_seconds
        self._pending: list[tuple[_Item, asyncio.Future[bool]]] = []
        self._writing = 0  # puts in the batch being committed: they wait for the disk too
        self._wakeup = asyncio.Event()
        self._appended = asyncio.Event()
        self._healthy = True
        self._room_needed = 0  # bytes free on the disk before `ready` probes after a failure
        self._closing = False
        self._cursor: dict[str, int] = {}
        self._acks = 0
        self._writer_task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-queue-write")
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-queue-read")
        loop = asyncio.get_running_loop()
        try:
            self._wconn = await loop.run_in_executor(self._write_pool, self._open_writer)
            self._rconn = await loop.run_in_executor(self._read_pool, connect, self._path, "NORMAL")
        except sqlite3.Error as exc:
            raise QueueUnavailable(f"cannot open the queue at {self._path}: {exc}") from exc
        self._closing = False
        self._writer_task = asyncio.create_task(self._write_loop(), name="trackd-queue-writer")

    def _open_writer(self) -> sqlite3.Connection:
        conn = connect(self._path, "FULL")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(dedupe)")}
        if "fingerprint" not in columns:  # a queue made before fingerprints were kept
            conn.execute("ALTER TABLE dedupe ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''")
        return conn

    # -- writes -----------------------------------------------------------------------------

    async def put(
        self, envelope: Envelope, *, idempotent: bool = False, fingerprint: str = UNKNOWN
    ) -> bool:
        if self._closing or self._writer_task is None:
            raise QueueUnavailable("the queue is closed")
        if self._waiting() >= self._max_pending:
            raise QueueUnavailable("too many writes are waiting for the disk")
        item = (
            envelope.request_id,
            envelope.workspace_id,
            envelope.event_count,
            envelope.received_at,
            envelope.encode(),
            idempotent,
            fingerprint,
        )
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wakeup.set()
        return await future

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._writing = len(batch)
                try:
                    results = await loop.run_in_executor(
                        self._write_pool, self._write_batch, [item for item, _ in batch]
                    )
                except Exception as exc:  # whatever it is, the writer lives on: no put hangs
                    self._failed(batch, exc)
                    continue
                finally:
                    self._writing = 0
                self._healthy = True
                self._room_needed = 0
                for (_, future), stored in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(stored)
                self._appended.set()
            if self._closing:
                return

    def _waiting(self) -> int:
        """Puts not yet answered: `max_pending` bounds them all, the batch on the disk too."""
        return len(self._pending) + self._writing

    def _failed(self, batch: list[tuple[_Item, asyncio.Future[bool]]], exc: Exception) -> None:
        """Nothing of the batch is kept: its puts raise, and `ready` is False until the disk has
        room for twice its size (the WAL's copy, then the checkpoint's) and a probe write works."""
        self._healthy = False
        self._room_needed = 2 * sum(len(item[4]) for item, _ in batch)
        if not isinstance(exc, QueueUnavailable):
            log.error("queue write of %d envelopes failed", len(batch), exc_info=exc)
            exc = QueueUnavailable(f"queue write failed: {exc!r}")
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)

    def _write_batch(self, items: list[_Item]) -> list[bool]:
        conn = self._wconn
        results: list[bool] = []
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for request_id, workspace, events, received_at, body, idempotent, print_ in items:
                if idempotent:  # a request_id whose window has passed is taken again
                    cur = conn.execute(
                        "INSERT INTO dedupe VALUES (?, ?, ?) ON CONFLICT(request_id) DO UPDATE "
                        "SET created = excluded.created, fingerprint = excluded.fingerprint "
                        "WHERE created <= ?",
                        (request_id, now, print_, now - self._dedupe_seconds),
                    )
                    if cur.rowcount == 0:
                        results.append(False)
                        continue
                conn.execute(
                    "INSERT INTO log (request_id, workspace, events, received_at, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (request_id, workspace, events, received_at, body),
                )
                results.append(True)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself
                    conn.execute("ROLLBACK")
            log.error("queue write of %d envelopes failed: %s", len(items), exc)
            raise QueueUnavailable(str(exc)) from exc
        return results

    # -- reads ------------------------------------------------------------------------------

    async def remembered(self, request_id: str) -> str | None:
        cutoff = time.time() - self._dedupe_seconds
        rows = await self._read(
            "SELECT fingerprint FROM dedupe WHERE request_id = ? AND created > ?",
            (request_id, cutoff),
        )
        return str(rows[0][0]) if rows else None

    async def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            return self._rconn.execute(sql, args).fetchall()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._read_pool, run)
        except sqlite3.Error as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def _position(self, consumer: str) -> int:
        if consumer not in self._cursor:
            await self._run_write(self._register_sync, consumer)
            rows = await self._read("SELECT position FROM consumers WHERE name = ?", (consumer,))
            self._cursor[consumer] = int(rows[0][0])
        return self._cursor[consumer]

    def _register_sync(self, consumer: str) -> None:
        """A consumer exists from its first read, so reclaim keeps what it has not acked."""
        with self._rconn as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR IGNORE INTO consumers VALUES (?, 0)", (consumer,))

    async def get(self, consumer: str, max_items: int, timeout: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while True:
            position = await self._position(consumer)
            self._appended.clear()
            rows = await self._read(
                "SELECT seq, body FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
                (position, max_items),
            )
            if rows:
                deliveries = [Delivery(int(s), Envelope.decode(b)) for s, b in rows]
                self._cursor[consumer] = deliveries[-1].seq
                return deliveries
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._appended.wait(), min(remaining, POLL_SECONDS))

    async def ack(self, consumer: str, deliveries: list[Delivery]) -> None:
        if not deliveries:
            return
        last = max(d.seq for d in deliveries)
        self._acks += 1
        reclaim = self._acks % RECLAIM_EVERY == 0
        await self._run_write(self._ack_sync, consumer, last, reclaim)

    def _ack_sync(self, consumer: str, last: int, reclaim: bool) -> None:
        conn = self._rconn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO consumers VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                "SET position = max(position, excluded.position)",
                (consumer, last),
            )
        if reclaim:
            self._reclaim_sync()

    def _reclaim_sync(self) -> None:
        conn = self._rconn
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM log WHERE seq <= (SELECT min(position) FROM consumers)")
            conn.execute(
                "DELETE FROM dedupe WHERE created < ?", (time.time() - self._dedupe_seconds,)
            )

    async def _run_write(self, fn: Callable[..., None], *args: object) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._read_pool, fn, *args)
        except sqlite3.Error as exc:
            raise QueueUnavailable(str(exc)) from exc

    async def nack(self, consumer: str) -> None:
        self._cursor.pop(consumer, None)

    async def ready(self) -> bool:
        if self._closing or self._writer_task is None:
            return False
        if self._waiting() >= self._max_pending:
            return False
        if not self._healthy:
            # A failed batch leaves WAL space behind that a one-row probe fits in on a full
            # disk: the free space must hold the batch that failed before the probe counts.
            if _free_bytes(self._path.parent) < self._room_needed:
                return False
            try:
                await asyncio.get_running_loop().run_in_executor(self._write_pool, self._probe)
                self._healthy = True
            except sqlite3.Error:
                return False
        return True

    def _probe(self) -> None:
        """One row rewritten: the disk takes writes again (a read-only or failed disk does not)."""
        with self._wconn as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT OR REPLACE INTO probe VALUES (1)")

    async def lag(self, consumer: str) -> int:
        rows = await self._read(
            "SELECT count(*) FROM log WHERE seq > "
            "coalesce((SELECT position FROM consumers WHERE name = ?), 0)",
            (consumer,),
        )
        (count,) = rows[0]
        return int(count)

    async def backlog(self, consumer: str, workspace_id: str) -> Backlog:
        rows = await self._read(
            "SELECT count(*), coalesce(sum(events), 0), min(received_at) FROM log "
            "WHERE workspace = ? AND seq > "
            "coalesce((SELECT position FROM consumers WHERE name = ?), 0)",
            (workspace_id, consumer),
        )
        envelopes, events, oldest = rows[0]
        return Backlog(int(envelopes), int(events), None if oldest is None else int(oldest))

    # -- read-your-writes (Delete User, data-api.md §0) --

    async def head(self) -> int:
        """The log's AUTOINCREMENT high-water mark: at or after every committed put (a put
        returns only after its commit), and never lowered by reclaiming consumed entries."""
        rows = await self._read("SELECT seq FROM sqlite_sequence WHERE name = ?", ("log",))
        return int(rows[0][0]) if rows else 0

    async def applied(self, consumer: str) -> int:
        rows = await self._read("SELECT position FROM consumers WHERE name = ?", (consumer,))
        return int(rows[0][0]) if rows else 0

    async def aclose(self) -> None:
        if self._writer_task is None:
            return
        self._closing = True
        self._wakeup.set()
        await self._writer_task  # pending puts finish first
        self._writer_task = None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._write_pool, self._wconn.close)
        await loop.run_in_executor(self._read_pool, self._rconn.close)
        self._write_pool.shutdown()
        self._read_pool.shutdown()


def _free_bytes(directory: Path) -> int:
    stat = os.statvfs(directory)
    return stat.f_bavail * stat.f_frsize
