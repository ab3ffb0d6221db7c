"""A throwaway PostgreSQL database for the test session, with a fresh schema per store.

`store_url()` creates the database ``trackd_test_<random>`` on first use (on the server of
``TRACKD_TEST_POSTGRES``, default the local one) and returns a URL naming a schema no test has
used; `drop_database()` removes the database at the end of the session. Nothing here runs
unless a PostgreSQL test does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

SERVER = os.environ.get("TRACKD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = f"trackd_test_{uuid.uuid4().hex[:12]}"
_created = threading.Event()


def available() -> bool:
    parts = urlsplit(SERVER)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1).close()
    except OSError:
        return False
    return True


def database_url() -> str:
    """The session database (created on first use), in its default schema."""
    if not _created.is_set():
        _in_thread(_create)
        _created.set()
    return urlsplit(SERVER)._replace(path=f"/{DATABASE}").geturl()


def store_url() -> str:
    """A URL of the session database naming a schema of its own (the store creates it)."""
    return f"{database_url()}?schema=s_{uuid.uuid4().hex[:12]}"


def drop_database() -> None:
    if _created.is_set():
        _in_thread(_drop)
        _created.clear()


async def _create() -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()


async def _drop() -> None:
    import asyncpg

    conn = await asyncpg.connect(SERVER)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        await conn.close()


def _in_thread(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `job` on a loop of its own: the callers may be inside the test's running loop."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(job())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
