"""`Processor` and `ProcessorService` on the real MemoryQueue and real event stores: order,
acknowledgement after apply, a failing store, redelivery, and the file lease."""

from __future__ import annotations

import gc
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.faults.disk import fill
from trackd.embedded import FileLease
from trackd.errors import StoreError
from trackd.models import Action, Envelope
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.processor.runner import CONSUMER, Processor
from trackd.processor.service import ProcessorService
from trackd.queue.memory import MemoryQueue
from trackd.store import open_event_store
from trackd.store.base import EventQuery, EventStore

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000


def env(request_id: str, name: str = "Opened", customer_id: str = "123", **fields: Any) -> Envelope:
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": T + 60_000,
        "customer_id": customer_id,
        "device_id": None,
        "actions": [
            Action(
                index=0,
                action=name,
                attributes={},
                current_time=T,
                user_time=T,
                user_timezone_offset=0,
            )
        ],
        "event_count": 1,
    }
    values.update(fields)
    return Envelope(**values)


@pytest.fixture
async def queue() -> AsyncIterator[MemoryQueue]:
    q = MemoryQueue()
    await q.open()
    yield q
    await q.aclose()


@pytest.fixture
async def store() -> AsyncIterator[EventStore]:
    s = open_event_store("memory://")
    await s.open()
    yield s
    await s.aclose()


@pytest.fixture
async def file_store(tmp_path: Path) -> AsyncIterator[EventStore]:
    """A store whose data outlives `aclose` + `open`, to take it away and bring it back."""
    s = open_event_store(f"sqlite:///{tmp_path}/events.db")
    await s.open()
    yield s
    await s.aclose()


async def put(queue: MemoryQueue, *envelopes: Envelope) -> None:
    for e in envelopes:
        assert await queue.put(e) is True


async def event_ids(store: EventStore) -> list[str]:
    events, _ = await store.events(EventQuery(workspace_id="WS1", limit=1000))
    return [e["event_id"] for e in events]


async def until(condition: Callable[[], bool | Awaitable[bool]], seconds: float = 10.0) -> bool:
    """Poll `condition` (plain or async) until it is true or the deadline passes."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result or time.monotonic() > deadline:
            return bool(result)
        await anyio.sleep(0.02)


async def counted(store: EventStore, events: int) -> bool:
    return (await store.counts("WS1")).get("processed_events", 0) == events


async def drained(queue: MemoryQueue) -> bool:
    return await queue.lag(CONSUMER) == 0


# -- Processor --------------------------------------------------------------------------------


async def test_run_once_applies_envelopes_in_queue_order_then_acknowledges(
    queue: MemoryQueue, store: EventStore
) -> None:
    await put(queue, env("r1"), env("r2", "Bought"), env("r3", customer_id="456"))
    processor = Processor(queue, store)
    assert await queue.lag(CONSUMER) == 3
    assert await processor.run_once(timeout=0) == 3
    assert await queue.lag(CONSUMER) == 0
    assert processor.processed_envelopes == 3
    assert await event_ids(store) == ["r3-0", "r2-0", "r1-0"]  # newest (last processed) first
    assert await store.counts("WS1") == {"processed_events": 3}
    assert await processor.run_once(timeout=0) == 0


async def test_batches_are_at_most_batch_size_envelopes_in_order(
    queue: MemoryQueue, store: EventStore
) -> None:
    await put(queue, *(env(f"r{i}") for i in range(5)))
    processor = Processor(queue, store, batch_size=2)
    assert [await processor.run_once(timeout=0) for _ in range(4)] == [2, 2, 1, 0]
    assert await event_ids(store) == ["r4-0", "r3-0", "r2-0", "r1-0", "r0-0"]
    assert await queue.lag(CONSUMER) == 0


async def test_store_failure_rewinds_the_batch_and_it_is_applied_once_the_store_is_back(
    queue: MemoryQueue, file_store: EventStore
) -> None:
    processor = Processor(queue, file_store)
    await put(queue, env("r1"))
    assert await processor.run_once(timeout=0) == 1
    await put(queue, env("r2"), env("r3"))
    await file_store.aclose()
    with pytest.raises(StoreError):
        await processor.run_once(timeout=0)
    assert await queue.lag(CONSUMER) == 2  # not acknowledged
    assert processor.processed_envelopes == 1
    await file_store.open()
    # the batch again after the nack, in halves after a failure, then whole batches again
    assert [await processor.run_once(timeout=0) for _ in range(3)] == [1, 1, 0]
    assert await queue.lag(CONSUMER) == 0
    assert await event_ids(file_store) == ["r3-0", "r2-0", "r1-0"]
    assert await file_store.counts("WS1") == {"processed_events": 3}


async def test_redelivered_envelopes_are_not_double_counted(
    queue: MemoryQueue, store: EventStore
) -> None:
    await put(queue, env("r1"), env("r2"))
    # a processor that applied the batch and died before acknowledging it
    deliveries = await queue.get(CONSUMER, 10, 0)
    await apply(store, [plan(d.envelope) for d in deliveries])
    await queue.nack(CONSUMER)
    await put(queue, env("r3"))
    processor = Processor(queue, store)
    assert await processor.run_once(timeout=0) == 3  # r1 and r2 come again, with r3
    assert await queue.lag(CONSUMER) == 0
    assert await store.counts("WS1") == {"processed_events": 3}
    user = await store.user("WS1", "123")
    assert user is not None and user["event_count"] == 3
    assert await event_ids(store) == ["r3-0", "r2-0", "r1-0"]


# -- ProcessorService -------------------------------------------------------------------------


async def test_service_processes_what_arrives_and_stops(
    queue: MemoryQueue, store: EventStore
) -> None:
    service = ProcessorService(Processor(queue, store))
    await service.start()
    try:
        assert service.active
        await put(queue, env("r1"), env("r2"))
        assert await until(lambda: counted(store, 2))
        await put(queue, env("r3"))
        assert await until(lambda: counted(store, 3))
    finally:
        await service.stop()
    assert not service.active
    assert await event_ids(store) == ["r3-0", "r2-0", "r1-0"]


async def test_service_keeps_retrying_a_failing_store_and_applies_once_it_is_back(
    queue: MemoryQueue, file_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    await file_store.aclose()
    service = ProcessorService(Processor(queue, file_store))
    await put(queue, env("r1"), env("r2"))
    with caplog.at_level(logging.ERROR, logger="trackd.processor.runner"):
        await service.start()
        try:
            assert await until(lambda: len(caplog.records) >= 2), "no failed attempt was logged"
            assert await queue.lag(CONSUMER) == 2
            await file_store.open()
            assert await until(lambda: drained(queue))
        finally:
            await service.stop()
    assert {r.getMessage().split(";")[0] for r in caplog.records} == {"processing failed"}
    assert await file_store.counts("WS1") == {"processed_events": 2}
    assert await event_ids(file_store) == ["r2-0", "r1-0"]


async def test_only_one_service_on_a_lease_processes_and_the_other_takes_over(
    queue: MemoryQueue, store: EventStore, tmp_path: Path
) -> None:
    lease_file = tmp_path / "processor.lease"
    first = ProcessorService(Processor(queue, store), FileLease(lease_file), retry_seconds=0.05)
    second = ProcessorService(Processor(queue, store), FileLease(lease_file), retry_seconds=0.05)
    await first.start()
    try:
        await put(queue, env("r1"))
        assert await until(lambda: first.processor.processed_envelopes == 1)
        await second.start()
        await put(queue, env("r2"), env("r3"))
        assert await until(lambda: first.processor.processed_envelopes == 3)
        await anyio.sleep(0.2)  # several of the second's lease attempts
        assert second.processor.processed_envelopes == 0
        assert second.active  # waiting for the lease, not gone
    finally:
        await first.stop()
    try:
        await put(queue, env("r4"))
        assert await until(lambda: second.processor.processed_envelopes == 1)
    finally:
        await second.stop()
    assert first.processor.processed_envelopes == 3
    assert await store.counts("WS1") == {"processed_events": 4}
    assert await event_ids(store) == ["r4-0", "r3-0", "r2-0", "r1-0"]


async def test_a_service_waiting_for_the_lease_stops_at_once(
    queue: MemoryQueue, store: EventStore, tmp_path: Path
) -> None:
    holder = FileLease(tmp_path / "processor.lease")
    assert holder.try_acquire()
    try:
        waiting = ProcessorService(
            Processor(queue, store), FileLease(tmp_path / "processor.lease"), retry_seconds=0.05
        )
        await waiting.start()
        await put(queue, env("r1"))
        await anyio.sleep(0.2)
        assert waiting.processor.processed_envelopes == 0
        await waiting.stop(timeout=5)
        assert not waiting.active
    finally:
        holder.release()
    assert await queue.lag(CONSUMER) == 1
    assert await store.counts("WS1") == {}


# -- batches bounded by events ----------------------------------------------------------------


def bulk(request_id: str, events: int) -> Envelope:
    """An envelope of `events` events, like a Track Event request with that many actions."""
    actions = [
        Action(index=i, action="Opened", attributes={}, current_time=T, user_time=T,
               user_timezone_offset=0)
        for i in range(events)
    ]  # fmt: skip
    return env(request_id, actions=actions, event_count=events)


async def test_a_batch_is_cut_by_events_and_the_rest_waits_in_the_queue(
    queue: MemoryQueue, file_store: EventStore
) -> None:
    await put(queue, *(bulk(f"r{i}", 3) for i in range(5)))
    processor = Processor(queue, file_store, batch_events=7)
    assert await processor.run_once(timeout=0) == 2  # 6 events; a third envelope makes 9
    assert await file_store.counts("WS1") == {"processed_events": 6}
    assert len(await event_ids(file_store)) == 6
    assert await queue.lag(CONSUMER) == 3
    assert (await queue.backlog(CONSUMER, "WS1")).events == 9
    assert [await processor.run_once(timeout=0) for _ in range(3)] == [2, 1, 0]
    assert await queue.lag(CONSUMER) == 0
    assert await file_store.counts("WS1") == {"processed_events": 15}
    assert await event_ids(file_store) == [f"r{i}-{j}" for i in range(4, -1, -1) for j in (2, 1, 0)]


async def test_an_envelope_larger_than_the_bound_is_a_batch_of_its_own(
    queue: MemoryQueue, store: EventStore
) -> None:
    await put(queue, bulk("small", 1), bulk("large", 10), bulk("after", 1))
    processor = Processor(queue, store, batch_events=4)
    assert [await processor.run_once(timeout=0) for _ in range(4)] == [1, 1, 1, 0]
    assert await store.counts("WS1") == {"processed_events": 12}
    assert (await event_ids(store))[0] == "after-0"


async def test_envelopes_without_events_count_one_each_against_the_bound(
    queue: MemoryQueue, store: EventStore
) -> None:
    updates = [
        env(f"u{i}", kind="customer", actions=[], user_attributes={"n": i}, event_count=0)
        for i in range(5)
    ]
    await put(queue, *updates)
    processor = Processor(queue, store, batch_events=2)
    assert [await processor.run_once(timeout=0) for _ in range(4)] == [2, 2, 1, 0]
    user = await store.user("WS1", "123")
    assert user is not None and user["attributes"] == {"n": 4}


async def test_a_failed_batch_rewinds_what_was_held_too_and_all_is_applied_once_in_order(
    queue: MemoryQueue, file_store: EventStore
) -> None:
    await put(queue, *(bulk(f"r{i}", 2) for i in range(4)))
    processor = Processor(queue, file_store, batch_events=4)
    assert await processor.run_once(timeout=0) == 2  # r2 and r3 may be held
    await file_store.aclose()
    with pytest.raises(StoreError):
        await processor.run_once(timeout=0)
    assert await queue.lag(CONSUMER) == 2
    await file_store.open()
    # after the failure the bound is halved (2 events: r2), then doubles back (4: r3)
    assert [await processor.run_once(timeout=0) for _ in range(3)] == [1, 1, 0]
    assert await file_store.counts("WS1") == {"processed_events": 8}
    assert await event_ids(file_store) == [f"r{i}-{j}" for i in range(3, -1, -1) for j in (1, 0)]


async def test_the_garbage_collector_runs_again_after_a_batch_even_a_failed_one(
    queue: MemoryQueue, file_store: EventStore
) -> None:
    processor = Processor(queue, file_store)
    await put(queue, env("r1"))
    assert await processor.run_once(timeout=0) == 1
    assert gc.isenabled()
    await put(queue, env("r2"))
    await file_store.aclose()
    with pytest.raises(StoreError):
        await processor.run_once(timeout=0)
    assert gc.isenabled()
    gc.disable()  # a host that turned it off keeps it off
    try:
        await file_store.open()
        assert await processor.run_once(timeout=0) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_on_a_nearly_full_disk_smaller_batches_store_what_fits_then_the_rest(
    tmp_path: Path,
) -> None:
    """The backlog (some 1.2 MB of events) does not fit the disk's free space (600 KB) in one
    transaction: a failed batch is retried in halves, so what fits is stored (one batch of it
    all would store nothing, forever), and the rest once the space is back, each event once."""
    from tests.faults.disk import tmpfs  # skipped where a tmpfs cannot be mounted

    queue = MemoryQueue()
    await queue.open()
    for n in range(300):
        large = Action(
            index=0,
            action="Opened",
            attributes={f"a{i}": f"{n:05d}" + "x" * 495 for i in range(8)},
            current_time=T,
            user_time=T,
            user_timezone_offset=0,
        )
        await queue.put(env(f"r{n}", customer_id=f"u{n}", actions=[large]))
    with tmpfs(tmp_path / "disk", "4m") as disk:
        store = open_event_store(f"sqlite:///{disk}/events.db")
        await store.open()
        try:
            ballast = disk / "ballast"
            fill(ballast)
            os.truncate(ballast, ballast.stat().st_size - 600 * 1024)
            processor = Processor(queue, store)
            failed_while_full = await attempts(processor, 40)
            stored_while_full = (await store.counts("WS1")).get("processed_events", 0)
            lag_while_full = await queue.lag(CONSUMER)
            ballast.unlink()
            await attempts(processor, 20)
            counts = await store.counts("WS1")
            events, _ = await store.events(EventQuery(workspace_id="WS1", limit=1000))
        finally:
            await store.aclose()
    assert failed_while_full > 0  # the disk was too full for some batches
    assert 0 < stored_while_full < 300
    assert lag_while_full == 300 - stored_while_full
    assert counts == {"processed_events": 300}
    assert sorted(e["event_id"] for e in events) == sorted(f"r{n}-0" for n in range(300))
    assert await queue.lag(CONSUMER) == 0


async def attempts(processor: Processor, times: int) -> int:
    """`run_once` that many times; returns how many failed with a StoreError."""
    failed = 0
    for _ in range(times):
        try:
            await processor.run_once(timeout=0)
        except StoreError:
            failed += 1
    return failed
