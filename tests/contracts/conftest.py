"""Fixtures that run every adapter of a protocol through one suite.

Each protocol has a list of factories, one `pytest.param` per adapter. An adapter for a service
(NATS, Redis, PostgreSQL) joins its list with ``marks=needs_service(...)`` so that a missing
service skips locally and fails under CI.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from tests.conftest import needs_service
from tests.contracts import postgres_db
from trackd.limiter.base import Limiter
from trackd.limiter.memory import MemoryLimiter
from trackd.limiter.sqlite import SQLiteLimiter
from trackd.models import Action, Envelope
from trackd.queue.base import Queue
from trackd.queue.memory import MemoryQueue
from trackd.queue.sqlite import SQLiteQueue
from trackd.store.base import WorkspaceStore
from trackd.store.memory import MemoryWorkspaceStore
from trackd.store.sqlite import SQLiteWorkspaceStore

if TYPE_CHECKING:
    from trackd.store.postgres import PostgresStore


class QueueFactory(Protocol):
    def __call__(self, tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue: ...


class Clock:
    """A wall clock the test moves by hand (both limiters take a `clock` callable)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


LimiterFactory = Callable[[Path, Clock], Limiter]
StoreFactory = Callable[[Path], WorkspaceStore]


def _memory_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    return MemoryQueue(dedupe_seconds=dedupe_seconds)


def _sqlite_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    return SQLiteQueue(tmp_path / "queue.db", dedupe_seconds=dedupe_seconds)


NATS_URL = "nats://127.0.0.1:4222"
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


def nats_available() -> bool:
    return _port_open(4222)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _nats_queue(tmp_path: Path, *, dedupe_seconds: float = 86400.0) -> Queue:
    from trackd.queue.nats import NatsQueue

    stream = SESSION_PREFIX + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:12].upper()
    return NatsQueue(f"{NATS_URL}/{stream}", dedupe_seconds=dedupe_seconds)


async def _delete_test_streams() -> None:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=2)
    js = nc.jetstream()
    for name in await js.streams_info():
        stream = name.config.name
        if _ours_or_orphaned(stream):
            await js.delete_stream(stream)
    await nc.close()


@pytest.fixture(scope="session", autouse=True)
def _clean_nats_streams() -> Iterator[None]:
    yield
    if nats_available():
        asyncio.run(_delete_test_streams())


QUEUES = [
    pytest.param(_memory_queue, id="memory"),
    pytest.param(_sqlite_queue, id="sqlite"),
    pytest.param(_nats_queue, id="nats", marks=needs_service("nats", nats_available)),
]

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    return _port_open(6379)


def redis_test_prefix() -> str:
    """A key prefix no other test (nor a real trackd on the same Redis) uses."""
    return f"trackd:test:{uuid.uuid4().hex}:"


async def flush_redis_prefix(prefix: str) -> None:
    """Deletes the keys under `prefix`, and nothing else: the Redis is shared."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


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


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_database() -> Iterator[None]:
    yield
    postgres_db.drop_database()


STORES = [
    pytest.param(lambda tmp_path: MemoryWorkspaceStore(), id="memory"),
    pytest.param(lambda tmp_path: SQLiteWorkspaceStore(tmp_path / "store.db"), id="sqlite"),
    pytest.param(
        _postgres_store,
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]


@pytest.fixture(params=QUEUES)
def make_queue(request: pytest.FixtureRequest) -> QueueFactory:
    factory: QueueFactory = request.param
    return factory


@pytest.fixture
async def queue(make_queue: QueueFactory, tmp_path: Path) -> AsyncIterator[Queue]:
    q = make_queue(tmp_path)
    await q.open()
    yield q
    await q.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=LIMITERS)
async def limiter(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Limiter]:
    factory: LimiterFactory = request.param
    lim = factory(tmp_path, clock)
    await lim.open()
    yield lim
    await lim.aclose()


@pytest.fixture(params=STORES)
async def workspace_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[WorkspaceStore]:
    factory: StoreFactory = request.param
    store = factory(tmp_path)
    await store.open()
    yield store
    await store.aclose()


def envelope(request_id: str, workspace_id: str = "WS1", **attributes: Any) -> Envelope:
    """An envelope as the edge would queue it, with one action carrying `attributes`."""
    return Envelope(
        request_id=request_id,
        workspace_id=workspace_id,
        received_at=1_708_939_453_396,
        customer_id="123",
        device_id=None,
        actions=[
            Action(
                index=0,
                action="ProductAdded",
                attributes={"product": "Accessories", **attributes},
                platform="ANDROID",
                current_time=1_708_939_453_396,
                user_time=1_708_939_453_396,
                user_timezone_offset=0,
            )
        ],
        client_ip="198.51.100.7",
    )
