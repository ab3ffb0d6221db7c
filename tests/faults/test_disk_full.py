"""The data dir's disk fills up under load, then space comes back, with no restart.

The data dir is a 64 MB tmpfs mounted for the test, holding a ballast file (60 MB) and a crumb
(8 KB) written first. Clients send 50-event requests until the disk is full: every answer
is a 200 or a 503 with Retry-After, and `/readyz` turns 503. Freeing the crumb makes room for a
one-row write but not for a request: requests still get 503, and so does `/readyz`. Deleting the
ballast frees space; the same server process answers 200 again and `/readyz` 200 by itself, the
processor catches up, and the stats count every 200's events and every 503. Every 200 is in the
queue exactly once after a `kill -9` and a restart; nothing answered 503 is there.

The last test is in-process: the processor's acknowledgement lost to a full disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.e2e.helpers import auth, cli_json, poll, success
from tests.e2e.load import Load, broken_promises, expected
from tests.e2e.server import Launcher, TrackdProcess, queued
from tests.factories import SEED_BODY
from tests.faults.disk import fill, tmpfs
from tests.faults.figures import report
from trackd.errors import QueueUnavailable
from trackd.models import Action, Envelope
from trackd.processor.runner import CONSUMER, Processor
from trackd.queue.sqlite import SQLiteQueue
from trackd.store import open_event_store

pytestmark = pytest.mark.anyio

DISK = "64m"
#: All but 4 MB of the disk: once freed, room for the processor to store the whole backlog of
#: what 4 MB of queue holds (even in one transaction), and for the edge to take requests again.
BALLAST_BYTES = 60 * 2**20
CLIENTS = 8
EVENTS = 50
CRUMB_BYTES = 8 * 1024  # less than one request (10 KB), more than a one-row write
CRUMB_TRIES = 20
AFTER = 20  # requests sent once space is back
T = 1_700_000_000_000
SECONDS = 30.0  # generous bound of each phase on a busy 2-core machine


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Launcher]:
    """A launcher whose data dir is a 64 MB tmpfs; its servers are killed before unmounting."""
    launcher = Launcher(tmp_path)
    with tmpfs(launcher.data_dir, DISK):
        try:
            yield launcher
        finally:
            launcher.close()


async def readyz(server: TrackdProcess, status: int) -> httpx.Response:
    """Poll `/readyz` until it answers `status` (the last answer if it never does)."""
    body = {"status": "ready" if status == 200 else "not ready"}
    async with server.client() as client:
        return await poll(
            lambda: client.get("/readyz"), lambda r: (r.status_code, r.json()) == (status, body)
        )


@pytest.mark.e2e
async def test_a_full_disk_gets_503s_and_recovers_by_itself_when_space_comes_back(
    small_disk: Launcher,
) -> None:
    data_dir = small_disk.data_dir
    ballast = data_dir / "ballast"
    ballast.write_bytes(bytes(BALLAST_BYTES))
    crumb = data_dir / "crumb"  # freed first: room for a probe's row, not for a request
    crumb.write_bytes(os.urandom(CRUMB_BYTES))
    created = cli_json(data_dir, "workspace", "create", "--rate-limit", "100000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    server = small_disk.start()
    pid = server.pid
    load = Load(server.url, workspace_id, key, clients=CLIENTS, events=EVENTS, tag="full")
    async with anyio.create_task_group() as group:
        load.start(group)
        await load.wait_for(503, 1, SECONDS)  # the disk is full
        not_ready = await readyz(server, 503)
        await load.wait_for(503, 20 * CLIENTS, SECONDS)  # and stays full while clients retry
        load.stop()
    crumb.unlink()
    nearly_full = Load(server.url, workspace_id, key, clients=1, events=EVENTS, tag="crumb")
    async with nearly_full.client() as client:
        for n in range(CRUMB_TRIES):  # a 200 or two may fit where SQLite finds room
            if (await nearly_full.send(client, f"crumb-{n}")).status == 503:
                break
        still_full = await client.get("/readyz")  # at once: no write has told it since
    ballast.unlink()
    ready_again = await readyz(server, 200)
    after = Load(server.url, workspace_id, key, clients=1, events=EVENTS, tag="after")
    async with anyio.create_task_group() as group:
        after.start(group)
        await after.wait_for(200, AFTER, SECONDS)
        after.stop()
    assert (server.returncode, server.pid) == (None, pid), server.stderr()  # never restarted

    answers = load.answers + nearly_full.answers + after.answers
    assert [a for a in answers if a.status not in (200, 503)] == [], server.stderr()
    assert [(a.status, a.body, a.retry_after) for a in answers] == [expected(a) for a in answers]
    assert (not_ready.status_code, not_ready.json()) == (503, {"status": "not ready"})
    assert (still_full.status_code, still_full.json()) == (503, {"status": "not ready"})
    assert (ready_again.status_code, ready_again.json()) == (200, {"status": "ready"})
    assert nearly_full.answers[-1].status == 503
    assert [a.status for a in after.answers] == [200] * len(after.answers)
    accepted = sum(1 for a in answers if a.status == 200) * EVENTS
    owed = {
        "accepted_events": accepted,
        "rejected_requests": sum(1 for a in answers if a.status == 503),
        "processed_events": accepted,
        "dropped_events": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
    }
    assert await settled_stats(server, workspace_id, key, owed) == owed

    # every 200 survives a kill -9 and a restart, exactly once; nothing of a 503 is kept
    await anyio.to_thread.run_sync(server.kill)
    server = small_disk.start()
    async with server.client() as client:
        last = await client.post(
            f"/v1/event/{workspace_id}", json=SEED_BODY, headers=auth(workspace_id, key)
        )
    assert (last.status_code, last.json()) == (200, success(last))
    assert await anyio.to_thread.run_sync(server.terminate) == 0, server.stderr()
    envelopes = await queued(data_dir)
    assert envelopes[-1].request_id == last.headers["x-request-id"]
    assert broken_promises(answers, envelopes[:-1]) == {
        "accepted but not queued exactly once": [],
        "rejected but queued": [],
        "queued twice": [],
        "queued but never sent": [],
    }
    report("disk_full", answers, envelopes[:-1], cycles=1, events_per_request=EVENTS)


async def settled_stats(server: TrackdProcess, workspace_id: str, key: str, owed: Any) -> Any:
    """The workspace's stats once they are `owed` (the processor drains the queue and the edge
    flushes its rejection counts once the disk has room), or the last ones after a while."""
    async with server.client() as client:
        response = await poll(
            lambda: client.get(
                f"/api/workspaces/{workspace_id}/stats", headers=auth(workspace_id, key)
            ),
            lambda r: r.json() == owed,
        )
    return response.json()


# -- the processor's acknowledgement on a full disk ---------------------------------------------


def envelope(n: int) -> Envelope:
    action = Action(
        index=0, action="Opened", attributes={}, current_time=T, user_time=T, user_timezone_offset=0
    )
    return Envelope(
        request_id=f"r{n}",
        workspace_id="WS1",
        received_at=T,
        customer_id=f"u{n}",
        device_id=None,
        actions=[action],
        event_count=1,
    )


async def test_an_acknowledgement_lost_to_a_full_disk_delivers_the_batch_again(
    tmp_path: Path,
) -> None:
    """The store applied the batch, then the queue could not record the acknowledgement: the
    batch comes again once the disk has room (the store skips it), so the lag reaches 0
    instead of showing those envelopes forever."""
    with tmpfs(tmp_path / "disk", "1m") as disk:
        queue = SQLiteQueue(disk / "queue.db")
        store = open_event_store("memory://")
        await queue.open()
        await store.open()
        try:
            processor = Processor(queue, store)
            await queue.put(envelope(0))
            assert await processor.run_once() == 1  # the consumer exists, at envelope 0
            for n in range(1, 4):
                await queue.put(envelope(n))
            fill(disk / "ballast")
            with pytest.raises(QueueUnavailable, match="disk is full"):
                await processor.run_once()
            lag_while_full = await queue.lag(CONSUMER)
            (disk / "ballast").unlink()
            again = await processor.run_once()
            lag = await queue.lag(CONSUMER)
            counts = await store.counts("WS1")
        finally:
            await store.aclose()
            await queue.aclose()
    assert (lag_while_full, again, lag) == (3, 3, 0)
    assert counts == {"processed_events": 4}  # envelopes 1-3 applied once, not twice
