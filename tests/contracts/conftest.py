"""Fixtures that run every adapter of a protocol through one suite (the adapters, one
`pytest.param` each, are listed in tests/contracts/adapters.py), and the session's clean-up of
the NATS streams the queue adapters left on the shared server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.clock import Clock
from tests.contracts.adapters import (
    EVENT_STORES,
    LIMITERS,
    QUEUES,
    STORES,
    EventStoreFactory,
    LimiterFactory,
    QueueFactory,
    StoreFactory,
    delete_test_streams,
)
from tests.services import nats_available
from trackd.limiter.base import Limiter
from trackd.queue.base import Queue
from trackd.store.base import EventStore, WorkspaceStore


@pytest.fixture(scope="session", autouse=True)
def _clean_nats_streams() -> Iterator[None]:
    yield
    if nats_available():
        asyncio.run(delete_test_streams())


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


@pytest.fixture(params=EVENT_STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    """Each event store adapter, open (a module's own `store` fixture takes precedence)."""
    factory: EventStoreFactory = request.param
    s = factory(tmp_path)
    await s.open()
    yield s
    await s.aclose()
