"""What only the JetStream queue promises about `put` (trackd/queue/nats.py): publishes await
their PubAcks together, and a put still fails (QueueUnavailable, so the edge answers 503) when
JetStream does not acknowledge: no PubAck within the publish timeout, no stream, or too many
acks already awaited. Run on this machine's NATS; the stream is the test's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.contracts.adapters import _nats_queue
from tests.factories import envelope
from tests.services import NATS_URL, nats_available, needs_service
from trackd.errors import QueueUnavailable
from trackd.queue import nats as nats_queue
from trackd.queue.nats import NatsQueue

pytestmark = [pytest.mark.anyio, needs_service("nats", nats_available)]


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[NatsQueue]:
    q = _nats_queue(tmp_path)
    assert isinstance(q, NatsQueue)
    await q.open()
    yield q
    await q.aclose()


async def _silent_stream(stream: str) -> Any:
    """The stream deleted and a plain subscriber on its subjects: a publish reaches a
    responder that never sends a PubAck. Returns that subscriber's connection."""
    import nats

    async def ignore(msg: Any) -> None:
        return None

    nc = await nats.connect(NATS_URL)
    await nc.jetstream().delete_stream(stream)
    await nc.subscribe(f"{stream}.env.>", cb=ignore)
    await nc.flush()
    return nc


async def test_concurrent_puts_are_each_acknowledged_and_stored_once(queue: NatsQueue) -> None:
    sent = [envelope(f"c{i}", n=i) for i in range(500)]
    assert await asyncio.gather(*(queue.put(e) for e in sent)) == [True] * 500
    assert await queue.head() == 500
    got = []
    while batch := await queue.get("processor", 1000, 0.5):
        got.extend(batch)
    assert [d.envelope for d in got] == sent


async def test_a_put_without_a_puback_fails_after_the_publish_timeout(
    queue: NatsQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nats_queue, "PUBLISH_TIMEOUT", 0.4)
    monkeypatch.setattr(nats_queue, "SWEEP_SECONDS", 0.05)
    await queue.aclose()
    await queue.open()  # the sweeper of the patched period
    nc = await _silent_stream(queue.stream)
    try:
        began = time.monotonic()
        results = await asyncio.gather(
            *(queue.put(envelope(f"t{i}")) for i in range(3)), return_exceptions=True
        )
        waited = time.monotonic() - began
    finally:
        await nc.close()
    assert [type(r) for r in results] == [QueueUnavailable] * 3
    assert all("did not acknowledge" in str(r) for r in results), results
    assert 0.4 <= waited < 2.0, waited
    assert queue._js.publish_async_pending() == 0  # nothing left awaiting an ack


async def test_a_put_to_a_stream_that_is_gone_fails_at_once(queue: NatsQueue) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().delete_stream(queue.stream)
    finally:
        await nc.close()
    began = time.monotonic()
    with pytest.raises(QueueUnavailable, match="did not acknowledge"):
        await queue.put(envelope("gone"))
    assert time.monotonic() - began < 2.0


async def test_a_put_beyond_the_acks_awaited_at_once_fails_without_waiting(
    queue: NatsQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nats_queue, "MAX_PENDING_ACKS", 5)
    monkeypatch.setattr(nats_queue, "PUBLISH_TIMEOUT", 0.5)
    nc = await _silent_stream(queue.stream)
    try:
        waiting = [asyncio.create_task(queue.put(envelope(f"w{i}"))) for i in range(5)]
        while queue._js.publish_async_pending() < 5:
            await asyncio.sleep(0.01)
        with pytest.raises(QueueUnavailable, match="await JetStream's PubAck"):
            await queue.put(envelope("one too many"))
        done = await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await nc.close()
    assert [type(r) for r in done] == [QueueUnavailable] * 5


async def test_aclose_fails_the_puts_still_waiting_for_a_puback(
    queue: NatsQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nats_queue, "PUBLISH_TIMEOUT", 0.3)
    monkeypatch.setattr(nats_queue, "SWEEP_SECONDS", 60.0)  # the sweeper never comes in time
    await queue.aclose()
    await queue.open()
    nc = await _silent_stream(queue.stream)
    try:
        waiting = asyncio.create_task(queue.put(envelope("late ack")))
        while not queue._js.publish_async_pending():
            await asyncio.sleep(0.01)
        await asyncio.wait_for(queue.aclose(), 2.0)
        with pytest.raises(QueueUnavailable, match="closed before the PubAck"):
            await asyncio.wait_for(waiting, 1.0)
    finally:
        await nc.close()
