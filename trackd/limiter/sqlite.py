"""A Limiter shared by the processes of one machine, in a SQLite file of the data dir.

Each `acquire` is one `BEGIN IMMEDIATE` transaction, so admission is atomic across processes.
Counts are not worth an fsync (`synchronous=OFF`): after a power cut the window restarts empty.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trackd.embedded import begin_immediate, connect
from trackd.errors import BackendError
from trackd.limiter.base import WINDOW_SECONDS, Decision
from trackd.limiter.window import decide, take_back

SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    key TEXT NOT NULL, second INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (key, second)
) WITHOUT ROWID;
"""


class SQLiteLimiter:
    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        self._path = Path(path)
        self._clock = clock
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-limiter")
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        conn = connect(self._path, "OFF")
        conn.executescript(SCHEMA)
        self._conn = conn

    async def _run(self, fn: Callable[[], None]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.Error as exc:
            raise BackendError(f"rate limiter at {self._path}: {exc}") from exc

    def _decide(self, key: str, cost: int, limit: int) -> Decision:
        conn, now = self._connection(), int(self._clock())
        with conn:
            begin_immediate(conn)
            conn.execute(
                "DELETE FROM buckets WHERE key = ? AND second <= ?", (key, now - WINDOW_SECONDS)
            )
            rows = conn.execute("SELECT second, n FROM buckets WHERE key = ?", (key,)).fetchall()
            decision = decide(dict(rows), now, cost, limit)
            if decision.allowed and cost:
                conn.execute(
                    "INSERT INTO buckets VALUES (?, ?, ?) "
                    "ON CONFLICT(key, second) DO UPDATE SET n = n + excluded.n",
                    (key, now, cost),
                )
        return decision

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendError("the rate limiter is not open")
        return self._conn

    async def acquire(self, key: str, cost: int, limit: int) -> Decision:
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._pool, self._decide, key, cost, limit
            )
        except sqlite3.Error as exc:
            raise BackendError(f"rate limiter at {self._path}: {exc}") from exc

    async def peek(self, key: str, limit: int) -> Decision:
        return await self.acquire(key, 0, limit)

    async def refund(self, key: str, cost: int) -> None:
        def give_back() -> None:
            conn = self._connection()
            with conn:
                begin_immediate(conn)
                rows = conn.execute("SELECT second, n FROM buckets WHERE key = ?", (key,))
                changed = take_back(dict(rows.fetchall()), cost)
                conn.executemany(
                    "UPDATE buckets SET n = ? WHERE key = ? AND second = ?",
                    [(n, key, second) for second, n in changed.items()],
                )

        await self._run(give_back)

    async def ready(self) -> bool:
        """A file of this machine: ready while open (a failing disk shows in the queue's own
        `ready`, which shares the data dir)."""
        return self._conn is not None

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
