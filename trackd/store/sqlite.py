"""The embedded WorkspaceStore: a table in the data dir's SQLite file, shared by every process.

A workspace is one row holding its document; `meta.revision` is bumped in the same transaction
as every change, so other processes notice a change by reading one integer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import msgspec

from trackd.embedded import connect
from trackd.errors import ConfigError, NotFound, StoreError
from trackd.models import Workspace
from trackd.store.sqlite_schema import migrate

T = TypeVar("T")

_BUMP = "UPDATE meta SET value = value + 1 WHERE key = 'revision'"
_decode = msgspec.json.Decoder(Workspace).decode


class SQLiteWorkspaceStore:
    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="trackd-store")
        self._conn: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise StoreError("the store is not open")
            return fn(self._conn)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        except sqlite3.Error as exc:
            raise StoreError(f"store at {self._path}: {exc}") from exc

    async def open(self) -> None:
        def opened() -> sqlite3.Connection:
            conn = connect(self._path)
            migrate(conn)
            return conn

        try:
            self._conn = await asyncio.get_running_loop().run_in_executor(self._pool, opened)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store at {self._path}: {exc}") from exc

    async def create(self, workspace: Workspace) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "INSERT INTO workspaces VALUES (?, ?)",
                        (workspace.id, msgspec.json.encode(workspace)),
                    )
                except sqlite3.IntegrityError as exc:
                    raise ConfigError(f"workspace {workspace.id!r} already exists") from exc
                conn.execute(_BUMP)

        await self._run(insert)

    async def save(self, workspace: Workspace) -> None:
        def update(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute(
                    "UPDATE workspaces SET doc = ? WHERE id = ?",
                    (msgspec.json.encode(workspace), workspace.id),
                )
                if cur.rowcount == 0:
                    raise NotFound(f"no workspace {workspace.id!r}")
                conn.execute(_BUMP)

        await self._run(update)

    async def get(self, workspace_id: str) -> Workspace | None:
        rows = await self._run(
            lambda c: c.execute(
                "SELECT doc FROM workspaces WHERE id = ?", (workspace_id,)
            ).fetchall()
        )
        return _decode(rows[0][0]) if rows else None

    async def list(self) -> list[Workspace]:
        rows = await self._run(
            lambda c: c.execute("SELECT doc FROM workspaces ORDER BY id").fetchall()
        )
        return [_decode(doc) for (doc,) in rows]

    async def revision(self) -> int:
        rows = await self._run(
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'revision'").fetchall()
        )
        return int(rows[0][0])

    async def aclose(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.get_running_loop().run_in_executor(self._pool, conn.close)
        self._pool.shutdown(wait=False)
