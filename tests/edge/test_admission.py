"""Admission control (`trackd.edge.admission`) and `/readyz`: beyond what the process answers
in `max_wait_seconds`, a Track request gets row 27's 503 at once and `/readyz` says so; the
limiter's health shows in `/readyz` too.

The bound is checked on the admission's own clock; the app's answers with the real SQLite queue,
its disk stalled by another writer holding the queue file's write lock (as in
tests/faults/test_overload.py), and with the Redis limiter, live or pointed at a dead port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.clock import Clock
from tests.factories import SEED_BODY, basic
from tests.services import (
    REDIS_URL,
    flush_redis_prefix,
    needs_service,
    redis_available,
    redis_test_prefix,
)
from trackd import admin
from trackd.edge.admission import FLOOR, WINDOW_SECONDS, Admission
from trackd.edge.app import TrackdApp
from trackd.edge.metrics import EdgeCounters
from trackd.limiter import Limiter
from trackd.limiter.memory import MemoryLimiter
from trackd.queue.base import Queue
from trackd.queue.memory import MemoryQueue
from trackd.queue.sqlite import SQLiteQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

UNAVAILABLE = {"message": "Service temporarily unavailable. Please retry.", "type": "ServerError"}
READY = (200, {"status": "ready"})
NOT_READY = (503, {"status": "not ready"})

# -- the rule, on the admission's clock ------------------------------------------------------


def admission(clock: Clock, *, max_in_flight: int = 10_000) -> Admission:
    counters = EdgeCounters()
    return Admission(counters, max_in_flight=max_in_flight, max_wait=1.0, hold=2.0, clock=clock)


def take(gate: Admission, n: int) -> int:
    """Offers `n` requests whose bodies are in at once; how many were taken."""
    taken = 0
    for _ in range(n):
        if gate.admit():
            gate.arrived()
            taken += 1
    return taken


def answer(gate: Admission, clock: Clock, n: int, seconds: float) -> None:
    """`n` answers spread over `seconds`."""
    for _ in range(n):
        clock.advance(seconds / n)
        gate.answered()


def test_before_any_answer_floor_requests_are_taken_and_the_next_refused() -> None:
    clock = Clock()
    gate = admission(clock)
    assert gate.ready()
    assert take(gate, FLOOR + 10) == FLOOR
    assert not gate.ready()
    answer(gate, clock, 1, 0.01)
    assert take(gate, 1) == 1  # one left, one taken
    assert not gate.ready()  # refused a moment ago: the hold
    answer(gate, clock, FLOOR, 2.0)
    assert gate.ready()


def test_the_bound_is_what_the_process_answered_in_max_wait_seconds_at_its_recent_peak() -> None:
    clock = Clock()
    gate = admission(clock)
    for _ in range(2):
        assert take(gate, FLOOR) == FLOOR
        answer(gate, clock, FLOOR, WINDOW_SECONDS / 2)
    peak = 2 * FLOOR / WINDOW_SECONDS  # answers a second, in that window
    assert take(gate, 10 * FLOOR) == peak * 1.0  # max_wait: refused beyond a second's answers
    answer(gate, clock, int(peak), 4 * WINDOW_SECONDS)  # half as fast: the peak decays
    assert gate.ready()
    assert FLOOR < gate.limit < peak
    clock.advance(60)
    assert take(gate, 1000) == FLOOR  # idle a minute: back to the floor


def test_max_in_flight_caps_the_bound() -> None:
    clock = Clock()
    gate = admission(clock, max_in_flight=3)
    assert take(gate, 5) == 3
    answer(gate, clock, 3, WINDOW_SECONDS)
    assert take(gate, 5) == 3


# -- the app ---------------------------------------------------------------------------------


class App:
    def __init__(self, app: TrackdApp, client: httpx.AsyncClient, key: str) -> None:
        self.app = app
        self.client = client
        self.key = key

    async def post(self, marker: str) -> httpx.Response:
        return await self.client.post(
            "/v1/event/WS1",
            json={**SEED_BODY, "customer_id": marker},
            headers={"Authorization": basic("WS1", self.key), "Content-Type": "application/json"},
        )

    async def readyz(self) -> tuple[int, Any]:
        response = await self.client.get("/readyz")
        return response.status_code, response.json()

    async def shed(self) -> float:
        text = (await self.client.get("/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "trackd_requests_shed_total":
                    return sample.value
        raise AssertionError(text)


@contextlib.asynccontextmanager
async def started(
    tmp_path: Path, queue: Queue, limiter: Limiter, **settings: Any
) -> AsyncIterator[App]:
    """The app on `queue` and `limiter` (memory store, no processor), with workspace WS1."""
    app = TrackdApp(
        Services(
            Settings(data_dir=str(tmp_path), processor="off", **settings),
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=queue,
            limiter=limiter,
        )
    )
    await app.startup()
    try:
        _, key = await admin.create_workspace(app.store, workspace_id="WS1", rate_limit=1000)
        await app.registry.reload()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            yield App(app, client, key)
    finally:
        await app.shutdown()


def hold_write_lock(queue_file: Path) -> sqlite3.Connection:
    """Another writer of the queue file: until it lets go, no put commits."""
    conn = sqlite3.connect(queue_file, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.anyio
async def test_beyond_max_in_flight_a_request_gets_row_27_at_once_and_readyz_503_then_recovers(
    tmp_path: Path,
) -> None:
    queue = SQLiteQueue(tmp_path / "queue.db")
    async with started(
        tmp_path, queue, MemoryLimiter(), max_in_flight_requests=2, shed_hold_seconds=0.2
    ) as app:
        assert await app.readyz() == READY
        lock = await asyncio.to_thread(hold_write_lock, tmp_path / "queue.db")
        waiting = [asyncio.create_task(app.post(f"w{n}")) for n in range(2)]
        await until(lambda: app.app.admission.in_flight == 2)
        refused = await app.post("refused")
        assert await app.readyz() == NOT_READY
        await asyncio.to_thread(lock.rollback)
        lock.close()
        accepted = await asyncio.gather(*waiting)

        request_id = refused.headers["x-request-id"]
        assert refused.status_code == 503
        assert refused.json() == {
            "status": "fail",
            "error": {**UNAVAILABLE, "request_id": request_id},
        }
        assert refused.headers["retry-after"] == "1"
        assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == (
            "1000",
            "998",
        )
        assert [r.status_code for r in accepted] == [200, 200]
        envelopes = await queue.get("inspect", 100, 0)
        assert sorted(d.envelope.customer_id for d in envelopes) == ["w0", "w1"]
        assert await app.shed() == 1
        assert app.app.counters.rejected["WS1"] == 1  # the workspace's rejected_requests
        await until(lambda: app.app.admission.ready())
        assert await app.readyz() == READY
        assert (await app.post("after")).status_code == 200


@pytest.mark.anyio
async def test_while_the_disk_stalls_floor_requests_wait_for_it_and_the_next_is_refused(
    tmp_path: Path,
) -> None:
    """Nothing answered yet: the bound is FLOOR. They wait for the disk; the next one gets the
    503 at once, and /readyz says so until the hold after the stall."""
    queue = SQLiteQueue(tmp_path / "queue.db")
    async with started(tmp_path, queue, MemoryLimiter(), shed_hold_seconds=0.2) as app:
        lock = await asyncio.to_thread(hold_write_lock, tmp_path / "queue.db")
        waiting = [asyncio.create_task(app.post(f"w{n}")) for n in range(FLOOR)]
        await until(lambda: app.app.admission.in_flight == FLOOR)
        refused = await app.post("refused")
        assert await app.readyz() == NOT_READY
        await asyncio.to_thread(lock.rollback)
        lock.close()
        accepted = await asyncio.gather(*waiting)

        error = {**UNAVAILABLE, "request_id": refused.headers["x-request-id"]}
        assert (refused.status_code, refused.json()) == (503, {"status": "fail", "error": error})
        assert refused.headers["retry-after"] == "1"
        assert [r.status_code for r in accepted] == [200] * FLOOR
        assert len(await queue.get("inspect", 1000, 0)) == FLOOR
        assert await app.shed() == 1
        await until(lambda: app.app.admission.ready())
        assert await app.readyz() == READY


# -- /readyz and the limiter -----------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_readyz_is_503_while_the_redis_limiter_cannot_be_reached(tmp_path: Path) -> None:
    from trackd.limiter.redis import RedisLimiter

    limiter = RedisLimiter(f"redis://127.0.0.1:{closed_port()}/0")
    async with started(tmp_path, MemoryQueue(), limiter) as app:
        assert await app.readyz() == NOT_READY
        assert (await app.post("x")).status_code == 503  # what /readyz foretold


@pytest.mark.anyio
@needs_service("redis", redis_available)
async def test_readyz_is_200_with_a_live_redis_limiter(tmp_path: Path) -> None:
    from trackd.limiter.redis import RedisLimiter

    prefix = redis_test_prefix()
    limiter = RedisLimiter(f"{REDIS_URL}?prefix={prefix}")
    try:
        async with started(tmp_path, MemoryQueue(), limiter) as app:
            assert await app.readyz() == READY
            assert (await app.post("x")).status_code == 200
    finally:
        await flush_redis_prefix(prefix)
