"""Far more load than the disk can take: bounded waits, fast 503s, bounded memory, honest /readyz.

The server runs with ``TRACKD_MAX_PENDING_WRITES=50``, and 64 clients send 100-event requests
without pause. Three times the disk stalls: another writer takes the queue file's write lock for
two seconds (SQLite serialises the writers of a shared queue file, so this is what a stalled disk
or a slow co-writer does to the edge, with nothing faked). While the disk stalls the edge cannot
commit anything, so it is over capacity by the whole load: 50 requests wait for the disk, every
other one gets a 503 with Retry-After at once, and `/readyz` answers 503; once the lock goes,
the waiting requests get their 200 and `/readyz` is 200 again.

Throughout, every request is answered before the client's deadline (no timeout, no reset), the
resident memory of the server's processes (the edge and its processor) and the queue's WAL file
stay under a bound, and afterwards every 200 is in the queue exactly once and no 503 is.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import anyio
import httpx
import pytest

from tests.e2e.helpers import cli_json, poll
from tests.e2e.load import Answer, Load, broken_promises, expected
from tests.e2e.procfs import rss_kb
from tests.e2e.server import Launcher, TrackdProcess, queued
from tests.faults.figures import report

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CLIENTS = 64
EVENTS = 100
MAX_PENDING = 50
STALLS = 3
STALL_SECONDS = 2.0
#: Generous: a request waits at most for one stall, then one commit, on a busy 2-core machine.
DEADLINE_SECONDS = 30.0
RSS_BOUND_KB = 400 * 1024
#: SQLite checkpoints the WAL every 1,000 pages (4 MB); a WAL past this was never checkpointed.
WAL_BOUND_BYTES = 64 * 2**20
SETTLE_SECONDS = 30.0


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launcher]:
    monkeypatch.setenv("TRACKD_MAX_PENDING_WRITES", str(MAX_PENDING))
    started = Launcher(tmp_path)
    try:
        yield started
    finally:
        started.close()


class Stall(NamedTuple):
    """A span during which the disk took no commit, and what `/readyz` said during it."""

    began: float  # time.monotonic() once the lock was held
    ended: float  # time.monotonic() just before it was let go
    readyz: httpx.Response


def hold_write_lock(queue_file: Path) -> sqlite3.Connection:
    """Another writer of the queue file: once this returns, no one else can commit to it."""
    conn = sqlite3.connect(
        queue_file, timeout=DEADLINE_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.execute("BEGIN IMMEDIATE")
    return conn


def let_go(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK")
    conn.close()


async def stall(server: TrackdProcess) -> Stall:
    """The disk takes no commit for STALL_SECONDS; `/readyz` is asked until it says 503 (its
    last answer if it never does within the stall)."""
    conn = await anyio.to_thread.run_sync(hold_write_lock, server.data_dir / "queue.db")
    began = time.monotonic()
    try:
        async with server.client() as client:
            readyz = await poll(
                lambda: client.get("/readyz"), lambda r: r.status_code == 503, STALL_SECONDS
            )
        await anyio.sleep(max(0.0, began + STALL_SECONDS - time.monotonic()))
    finally:
        ended = time.monotonic()
        await anyio.to_thread.run_sync(let_go, conn)
    return Stall(began, ended, readyz)


async def sample(pgid: int, wal: Path, rss: list[int], wal_sizes: list[int]) -> None:
    """The server's resident memory (kB) and its queue's WAL file size, ten times a second."""
    while True:
        rss.append(rss_kb(pgid))
        wal_sizes.append(wal.stat().st_size if wal.exists() else 0)
        await anyio.sleep(0.1)


def inside(answer: Answer, span: Stall) -> bool:
    """Sent once the lock was held and answered before it was let go."""
    return answer.sent >= span.began and answer.answered <= span.ended


async def test_overload_gets_fast_503s_bounded_waits_and_memory_and_readyz_follows(
    launcher: Launcher,
) -> None:
    created = cli_json(launcher.data_dir, "workspace", "create", "--rate-limit", "1000000000")
    workspace_id, key = created["workspace_id"], created["api_key"]
    server = launcher.start()
    load = Load(
        server.url,
        workspace_id,
        key,
        clients=CLIENTS,
        events=EVENTS,
        tag="over",
        timeout=DEADLINE_SECONDS,
    )
    rss: list[int] = []
    wal_sizes: list[int] = []
    stalls: list[Stall] = []
    recovered: list[httpx.Response] = []
    async with anyio.create_task_group() as sampler:
        wal = launcher.data_dir / "queue.db-wal"
        sampler.start_soon(sample, server.pid, wal, rss, wal_sizes)
        async with anyio.create_task_group() as group:
            load.start(group)
            await load.wait_for(200, CLIENTS, SETTLE_SECONDS)
            for _ in range(STALLS):
                stalls.append(await stall(server))
                async with server.client() as client:
                    recovered.append(
                        await poll(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
                    )
                await load.wait_for(200, CLIENTS, SETTLE_SECONDS, since=time.monotonic())
            load.stop()  # each client finishes the request in hand
        sampler.cancel_scope.cancel()
    assert await anyio.to_thread.run_sync(server.terminate) == 0, server.stderr()

    answers = load.answers
    assert [a for a in answers if a.status not in (200, 503)] == [], server.stderr()
    assert [(a.status, a.body, a.retry_after) for a in answers] == [expected(a) for a in answers]
    for span in stalls:
        assert (span.readyz.status_code, span.readyz.json()) == (503, {"status": "not ready"})
        during = [a.status for a in answers if inside(a, span)]
        assert during.count(503) > 0  # answered while the disk still stalled: nobody waited
        assert during.count(200) == 0  # and no 200 can come before the commit
    assert [(r.status_code, r.json()) for r in recovered] == [(200, {"status": "ready"})] * STALLS
    assert max(rss) < RSS_BOUND_KB, f"peak RSS {max(rss)} kB"
    assert max(wal_sizes) < WAL_BOUND_BYTES, f"peak WAL {max(wal_sizes)} bytes"

    envelopes = await queued(launcher.data_dir)
    assert broken_promises(answers, envelopes) == {
        "accepted but not queued exactly once": [],
        "rejected but queued": [],
        "queued twice": [],
        "queued but never sent": [],
    }
    waits = sorted(a.answered - a.sent for a in answers)
    fast = sorted(a.answered - a.sent for a in answers if a.status == 503)
    report(
        "overload",
        answers,
        envelopes,
        stalls=STALLS,
        clients=CLIENTS,
        events_per_request=EVENTS,
        answered_503_during_stalls=sum(
            1 for a in answers for s in stalls if a.status == 503 and inside(a, s)
        ),
        max_wait_seconds=round(waits[-1], 2),
        p50_503_seconds=round(fast[len(fast) // 2], 4) if fast else None,
        peak_rss_mb=round(max(rss) / 1024, 1),
        first_rss_mb=round(rss[0] / 1024, 1),
        peak_wal_mb=round(max(wal_sizes) / 2**20, 1),
    )
