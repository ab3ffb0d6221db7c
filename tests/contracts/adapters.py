"""Every adapter of each protocol, as the `pytest.param`s the contract fixtures run through.

An adapter for a service (NATS, Redis, PostgreSQL) carries ``marks=needs_service(...)``, so that
a missing service skips locally and fails under CI. Each runs in isolation on the shared
service: a JetStream stream of this session, a Redis key prefix of its own, a PostgreSQL schema
of its own (tests/contracts/postgres_db.py).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from tests.clock import Clock
from tests.contracts import postgres_db
from tests.services import (
    NATS_URL,
    REDIS_URL,
    flush_redis_prefix,
    nats_available,
    needs_service,
    redis_available,
    redis_test_prefix,
)
from trackd.limiter.base import Limiter
from trackd.limiter.memory import MemoryLimiter
from trackd.limiter.sqlite import SQLiteLimiter
from trackd.queue.base import Queue
from trackd.queue.memory import MemoryQueue
from trackd.queue.sqlite import SQLiteQueue
from trackd.store import open_event_store
from trackd.store.base import EventStore, WorkspaceStore
from trackd.store.memory import MemoryWorkspaceStore
from trackd.store.sqlite import SQLiteWorkspaceStore

if TYPE_CHECKING:
    from trackd.store.postgres import PostgresStore


class QueueFactory(Protocol):
    def __call__(self, tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue: ...


LimiterFactory = Callable[[Path, Clock], Limiter]
StoreFactory = Callable[[Path], WorkspaceStore]
EventStoreFactory = Callable[[Path], EventStore]


def _memory_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    return MemoryQueue(dedupe_seconds=dedupe_seconds)


def _sqlite_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    return SQLiteQueue(tmp_path / "queue.db", dedupe_seconds=dedupe_seconds)


NATS_TEST_PREFIX = "TRACKDTEST"
#: This session's streams carry its pid, so that a session deletes its own streams (and those of
#: sessions that died) but never those of another session running at the same time.
SESSION_PREFIX = f"{NATS_TEST_PREFIX}{os.getpid()}P"
_OWNER = re.compile(rf"(?:KV_)?{NATS_TEST_PREFIX}(\d+)P")
_LEGACY = re.compile(rf"(?:KV_)?{NATS_TEST_PREFIX}[0-9A-F]{{12}}")  # before names carried a pid


def _ours_or_orphaned(stream: str) -> bool:
    if _LEGACY.fullmatch(stream):
        return True
    match = _OWNER.match(stream)
    if match is None:
        return False
    pid = int(match[1])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # its session is gone
    except PermissionError:
        return False
    return False


def _nats_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    from trackd.queue.nats import NatsQueue

    stream = SESSION_PREFIX + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12].upper()
    return NatsQueue(f"{NATS_URL}/{stream}", dedupe_seconds=dedupe_seconds)


async def delete_test_streams() -> None:
    """Deletes this session's JetStream streams, and those of sessions that died."""
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    js = nc.jetstream()
    for name in await js.streams_info():
        stream = name.config.name
        if _ours_or_orphaned(stream):
            await js.delete_stream(stream)
    await nc.close()


QUEUES = [
    pytest.param(_memory_queue, id="memory"),
    pytest.param(_sqlite_queue, id="sqlite"),
    pytest.param(_nats_queue, id="nats", marks=needs_service("nats", nats_available)),
]


def _redis_limiter(tmp_path: Path, clock: Clock) -> Limiter:
    from trackd.limiter.redis import RedisLimiter

    class TestRedisLimiter(RedisLimiter):
        """The Redis adapter on a prefix of its own, whose keys go when it is closed."""

        async def aclose(self) -> None:
            await super().aclose()
            await flush_redis_prefix(self.prefix)

    return TestRedisLimiter(f"{REDIS_URL}?prefix={redis_test_prefix()}", clock=clock)


LIMITERS = [
    pytest.param(lambda tmp_path, clock: MemoryLimiter(clock=clock), id="memory"),
    pytest.param(
        lambda tmp_path, clock: SQLiteLimiter(tmp_path / "limiter.db", clock=clock), id="sqlite"
    ),
    pytest.param(_redis_limiter, id="redis", marks=needs_service("redis", redis_available)),
]


def _postgres_store(tmp_path: Path) -> PostgresStore:
    from trackd.store.postgres import PostgresStore

    return PostgresStore(postgres_db.store_url())


STORES = [
    pytest.param(lambda tmp_path: MemoryWorkspaceStore(), id="memory"),
    pytest.param(lambda tmp_path: SQLiteWorkspaceStore(tmp_path / "store.db"), id="sqlite"),
    pytest.param(
        _postgres_store,
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]


EVENT_STORES = [
    pytest.param(lambda tmp_path: open_event_store("memory://"), id="memory"),
    pytest.param(lambda tmp_path: open_event_store(f"sqlite:///{tmp_path}/events.db"), id="sqlite"),
    pytest.param(
        lambda tmp_path: open_event_store(postgres_db.store_url()),
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]
