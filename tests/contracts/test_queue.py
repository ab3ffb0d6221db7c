"""The Queue contract (trackd/queue/base.py), run against every adapter; then what only the
embedded SQLite log promises: durability across restarts, reclaim, group commit, several
processes on one file, and a disk that refuses a write."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.contracts.adapters import QueueFactory
from tests.factories import envelope
from trackd.errors import QueueUnavailable
from trackd.models import Envelope
from trackd.queue.base import Backlog, Delivery, Queue
from trackd.queue.sqlite import RECLAIM_EVERY, SQLiteQueue

pytestmark = pytest.mark.anyio


async def put_all(queue: Queue, envelopes: list[Envelope], *, idempotent: bool = False) -> None:
    for e in envelopes:
        assert await queue.put(e, idempotent=idempotent) is True


async def drain(
    queue: Queue, consumer: str, expected: int, deadline: float = 10.0
) -> list[Delivery]:
    """Deliveries until `expected` have come (or the deadline passes), without acknowledging."""
    got: list[Delivery] = []
    stop = time.monotonic() + deadline
    while len(got) < expected and time.monotonic() < stop:
        got += await queue.get(consumer, expected - len(got), 0.05)
    return got


def envelopes_of(deliveries: list[Delivery]) -> list[Envelope]:
    return [d.envelope for d in deliveries]


# -- put and get ------------------------------------------------------------------------------


async def test_get_returns_put_envelopes_in_put_order_with_equal_content(queue: Queue) -> None:
    sent = [envelope(f"r{i}", workspace_id=f"WS{i % 3}", n=i) for i in range(20)]
    await put_all(queue, sent)
    got = await queue.get("processor", 100, 0)
    assert envelopes_of(got) == sent
    seqs = [d.seq for d in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


class _Traced(dict[str, Any]):
    """A dict that can be watched with a weak reference (a plain dict cannot)."""


async def test_a_put_holds_the_envelopes_encoding_not_the_envelope_while_it_waits(
    queue: Queue,
) -> None:
    """An edge's memory in an overload is what its requests in flight hold: while the put
    waits for the disk or the engine, the decoded envelope (its actions) is not kept alive."""
    attributes = _Traced(plan="gold")
    gone = weakref.ref(attributes)
    sent = msgspec.structs.replace(envelope("held"), user_attributes=attributes)
    del attributes
    task = asyncio.create_task(queue.put(sent))
    del sent
    await asyncio.sleep(0)  # the put's first step: the envelope is encoded, its write waits
    assert gone() is None
    assert await task is True
    (got,) = await queue.get("processor", 10, 5)
    assert got.envelope.user_attributes == {"plan": "gold"}


async def test_get_on_an_empty_queue_returns_nothing_after_the_timeout(queue: Queue) -> None:
    started = time.monotonic()
    assert await queue.get("processor", 10, 0.3) == []
    waited = time.monotonic() - started
    assert waited >= 0.25
    assert waited < 10  # it returns; it does not hang


async def test_get_with_no_timeout_on_an_empty_queue_returns_nothing(queue: Queue) -> None:
    assert await queue.get("processor", 10, 0) == []


async def test_get_returns_an_envelope_put_while_it_waits(queue: Queue) -> None:
    sent = envelope("late")

    async def put_later() -> None:
        await asyncio.sleep(0.1)
        await queue.put(sent)

    task = asyncio.create_task(put_later())
    got = await queue.get("processor", 10, 10.0)
    await task
    assert envelopes_of(got) == [sent]


async def test_get_returns_at_most_max_items_and_the_rest_on_later_calls(queue: Queue) -> None:
    sent = [envelope(f"r{i}") for i in range(7)]
    await put_all(queue, sent)
    first = await queue.get("processor", 3, 0)
    second = await queue.get("processor", 3, 0)
    third = await queue.get("processor", 3, 0)
    assert [len(first), len(second), len(third)] == [3, 3, 1]
    assert envelopes_of(first + second + third) == sent
    assert await queue.get("processor", 3, 0) == []


# -- ack, nack, consumers ---------------------------------------------------------------------


async def test_acknowledged_deliveries_do_not_come_again_after_nack(queue: Queue) -> None:
    sent = [envelope(f"r{i}") for i in range(5)]
    await put_all(queue, sent)
    got = await queue.get("processor", 5, 0)
    await queue.ack("processor", got)
    await queue.nack("processor")
    assert await queue.get("processor", 10, 0) == []


async def test_nack_rewinds_to_the_last_ack_so_unacked_deliveries_come_again(
    queue: Queue,
) -> None:
    sent = [envelope(f"r{i}") for i in range(6)]
    await put_all(queue, sent)
    first = await queue.get("processor", 2, 0)
    await queue.ack("processor", first)
    second = await queue.get("processor", 2, 0)
    third = await queue.get("processor", 2, 0)
    assert envelopes_of(second + third) == sent[2:]
    await queue.nack("processor")
    again = await drain(queue, "processor", 4)  # redelivered at once (NATS: as naks land)
    assert envelopes_of(again) == sent[2:]
    assert [d.seq for d in again] == [d.seq for d in second + third]


async def test_ack_of_a_partial_batch_redelivers_only_what_follows_it(queue: Queue) -> None:
    sent = [envelope(f"r{i}") for i in range(5)]
    await put_all(queue, sent)
    got = await queue.get("processor", 5, 0)
    await queue.ack("processor", got[:3])
    await queue.nack("processor")
    assert envelopes_of(await drain(queue, "processor", 2)) == sent[3:]


async def test_ack_of_no_deliveries_changes_nothing(queue: Queue) -> None:
    sent = [envelope("r0")]
    await put_all(queue, sent)
    await queue.get("processor", 5, 0)
    await queue.ack("processor", [])
    await queue.nack("processor")
    assert envelopes_of(await drain(queue, "processor", 1)) == sent
    assert await queue.lag("processor") == 1


async def test_two_consumers_read_the_log_independently(queue: Queue) -> None:
    # A consumer exists from its first read; entries are reclaimed only once every consumer
    # that exists has acknowledged them.
    sent = [envelope(f"r{i}") for i in range(4)]
    await put_all(queue, sent)
    b_first = await queue.get("b", 2, 0)
    assert envelopes_of(b_first) == sent[:2]
    a = await queue.get("a", 10, 0)
    await queue.ack("a", a)
    assert envelopes_of(a) == sent
    assert await queue.lag("a") == 0
    assert await queue.lag("b") == 4
    await queue.ack("b", b_first)
    assert await queue.lag("b") == 2
    await queue.nack("b")
    assert envelopes_of(await drain(queue, "b", len(sent) - 2)) == sent[2:]
    assert await queue.get("a", 10, 0) == []


async def test_reclaim_never_drops_what_a_reading_consumer_has_not_acknowledged(
    queue: Queue,
) -> None:
    # Enough acks by one consumer to trigger every adapter's reclaim of consumed entries.
    sent = [envelope(f"r{i}") for i in range(RECLAIM_EVERY + 1)]
    await put_all(queue, sent)
    slow = await queue.get("slow", len(sent), 0)
    assert envelopes_of(slow) == sent
    for _ in sent:
        await queue.ack("fast", await queue.get("fast", 1, 0))
    assert await queue.lag("fast") == 0
    await queue.nack("slow")
    again: list[Delivery] = []
    while len(again) < len(sent) and (batch := await queue.get("slow", len(sent), 0.5)):
        again.extend(batch)  # `get` may return fewer than asked
    assert envelopes_of(again) == sent
    assert await queue.lag("slow") == len(sent)


# -- idempotency ------------------------------------------------------------------------------


async def test_idempotent_put_of_a_seen_request_id_stores_nothing_and_returns_false(
    queue: Queue,
) -> None:
    first = envelope("same", n=1)
    assert await queue.remembered("same") is None
    assert await queue.put(first, idempotent=True) is True
    assert await queue.remembered("same") == ""
    assert await queue.put(envelope("same", n=2), idempotent=True) is False
    assert envelopes_of(await queue.get("processor", 10, 0)) == [first]
    assert await queue.lag("processor") == 1


async def test_an_idempotent_put_remembers_the_first_fingerprint(queue: Queue) -> None:
    assert await queue.put(envelope("same", n=1), idempotent=True, fingerprint="fp-1") is True
    assert await queue.remembered("same") == "fp-1"
    assert await queue.put(envelope("same", n=2), idempotent=True, fingerprint="fp-2") is False
    assert await queue.remembered("same") == "fp-1"  # the first request's, not the loser's
    assert len(await queue.get("processor", 10, 0)) == 1


async def test_concurrent_idempotent_puts_of_one_request_id_store_it_once(queue: Queue) -> None:
    results = await asyncio.gather(
        *(queue.put(envelope("same", n=i), idempotent=True) for i in range(20))
    )
    assert sorted(results) == [False] * 19 + [True]
    [delivery] = await queue.get("processor", 100, 0)
    assert delivery.envelope == envelope("same", n=results.index(True))


async def test_non_idempotent_puts_are_all_stored_and_not_marked_seen(queue: Queue) -> None:
    sent = [envelope(f"r{i}") for i in range(5)]
    await put_all(queue, sent)
    assert envelopes_of(await queue.get("processor", 100, 0)) == sent
    assert await queue.remembered("r0") is None


async def test_idempotent_puts_of_distinct_request_ids_are_all_stored(queue: Queue) -> None:
    sent = [envelope(f"r{i}") for i in range(5)]
    await put_all(queue, sent, idempotent=True)
    assert envelopes_of(await queue.get("processor", 100, 0)) == sent
    assert [await queue.remembered(f"r{i}") for i in range(5)] == [""] * 5


async def test_a_request_id_is_stored_again_once_its_dedupe_window_has_passed(
    make_queue: QueueFactory, tmp_path: Path
) -> None:
    queue = make_queue(tmp_path, dedupe_seconds=0.2)
    await queue.open()
    try:
        first, second = envelope("same", n=1), envelope("same", n=2)
        assert await queue.put(first, idempotent=True, fingerprint="old") is True
        deadline = time.monotonic() + 10
        while await queue.remembered("same") is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await queue.remembered("same") is None
        assert await queue.put(second, idempotent=True) is True
        assert await queue.remembered("same") == ""  # the new put's (none), not the old one
        assert envelopes_of(await queue.get("processor", 10, 0)) == [first, second]
    finally:
        await queue.aclose()


# -- lag, readiness, closing ------------------------------------------------------------------


async def test_lag_counts_envelopes_the_consumer_has_not_acknowledged(queue: Queue) -> None:
    assert await queue.lag("processor") == 0
    await put_all(queue, [envelope(f"r{i}") for i in range(5)])
    assert await queue.lag("processor") == 5
    assert len(await queue.get("other", 1, 0)) == 1  # read, never acknowledged
    got = await queue.get("processor", 3, 0)
    assert await queue.lag("processor") == 5  # read is not acknowledged
    await queue.ack("processor", got)
    assert await queue.lag("processor") == 2
    assert await queue.lag("other") == 5


async def test_backlog_counts_one_workspaces_unacknowledged_envelopes_and_events(
    queue: Queue,
) -> None:
    def sent(request_id: str, workspace_id: str, events: int, received_at: int) -> Envelope:
        return msgspec.structs.replace(
            envelope(request_id, workspace_id), event_count=events, received_at=received_at
        )

    assert await queue.backlog("processor", "WS1") == Backlog(0, 0, None)
    await put_all(
        queue,
        [
            sent("r0", "WS1", 3, 1_000),
            sent("r1", "WS2", 5, 1_500),
            sent("r2", "WS1", 2, 2_000),
            sent("r3", "WS1", 4, 3_000),
        ],
    )
    assert await queue.backlog("processor", "WS1") == Backlog(3, 9, 1_000)
    assert await queue.backlog("processor", "WS2") == Backlog(1, 5, 1_500)
    got = await queue.get("processor", 2, 0)
    assert await queue.backlog("processor", "WS1") == Backlog(3, 9, 1_000)  # read, not acked
    await queue.ack("processor", got)
    assert await queue.backlog("processor", "WS1") == Backlog(2, 6, 2_000)
    assert await queue.backlog("processor", "WS2") == Backlog(0, 0, None)
    assert await queue.backlog("processor", "WS3") == Backlog(0, 0, None)


# -- read-your-writes (Delete User, data-api.md §0) --


async def test_applied_reaches_head_once_every_returned_put_is_acknowledged(
    queue: Queue,
) -> None:
    assert await queue.head() == 0
    assert await queue.applied("processor") == 0
    await put_all(queue, [envelope(f"r{i}") for i in range(4)])
    head = await queue.head()
    got = await queue.get("processor", 4, 0)
    assert head >= max(d.seq for d in got)  # at or after every put that returned
    assert await queue.applied("processor") < head
    await queue.ack("processor", got[:2])
    assert await queue.applied("processor") == got[1].seq < head
    await queue.ack("processor", got[2:])
    assert await queue.applied("processor") >= head
    await put_all(queue, [envelope("r4")])  # a later put moves the head past it again
    assert await queue.head() > head
    assert await queue.applied("processor") < await queue.head()
    await queue.ack("processor", await queue.get("processor", 1, 0))
    assert await queue.applied("processor") >= await queue.head()
    assert await queue.applied("other") == 0


async def test_ready_is_true_while_open_and_false_after_aclose(queue: Queue) -> None:
    assert await queue.ready() is True
    await queue.aclose()
    assert await queue.ready() is False


async def test_put_after_aclose_raises_queue_unavailable(queue: Queue) -> None:
    await queue.aclose()
    await queue.aclose()  # idempotent
    with pytest.raises(QueueUnavailable):
        await queue.put(envelope("late"))


async def test_aclose_lets_puts_already_made_finish(queue: Queue) -> None:
    tasks = [asyncio.create_task(queue.put(envelope(f"r{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # every put has started and is waiting for its flush
    await queue.aclose()
    assert [t.result() for t in tasks] == [True] * 50


async def test_a_thousand_concurrent_puts_are_all_stored_exactly_once(queue: Queue) -> None:
    sent = [envelope(f"r{i}", n=i) for i in range(1000)]
    results = await asyncio.gather(*(queue.put(e) for e in sent))
    assert results == [True] * 1000
    got: list[Delivery] = []
    while batch := await queue.get("processor", 5000, 0.5):  # `get` may return fewer
        got.extend(batch)
    assert sorted(d.envelope.request_id for d in got) == sorted(e.request_id for e in sent)
    # Concurrent puts are stored in the order they were made.
    assert envelopes_of(got) == sent
    assert await queue.lag("processor") == 1000


# -- SQLite only ------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


def log_rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM log").fetchone()[0])


async def test_sqlite_reopened_queue_sees_every_put_and_the_committed_ack(db: Path) -> None:
    sent = [envelope(f"r{i}") for i in range(10)]
    first = SQLiteQueue(db)
    await first.open()
    await put_all(first, sent[:5])
    await put_all(first, sent[5:], idempotent=True)
    got = await first.get("processor", 10, 0)
    await first.ack("processor", got[:4])
    await first.aclose()

    second = SQLiteQueue(db)
    await second.open()
    try:
        assert await second.lag("processor") == 6
        assert envelopes_of(await second.get("processor", 100, 0)) == sent[4:]
        assert envelopes_of(await second.get("other", 100, 0)) == sent
        assert await second.remembered("r7") == ""
        assert await second.put(envelope("r7"), idempotent=True) is False
    finally:
        await second.aclose()


async def test_sqlite_puts_pending_at_aclose_are_durable(db: Path) -> None:
    sent = [envelope(f"r{i}") for i in range(200)]
    queue = SQLiteQueue(db)
    await queue.open()
    tasks = [asyncio.create_task(queue.put(e)) for e in sent]
    await asyncio.sleep(0)
    await queue.aclose()
    assert all(t.result() for t in tasks)
    reopened = SQLiteQueue(db)
    await reopened.open()
    try:
        assert envelopes_of(await reopened.get("processor", 1000, 0)) == sent
    finally:
        await reopened.aclose()


async def test_sqlite_log_keeps_no_row_every_consumer_has_acknowledged(db: Path) -> None:
    queue = SQLiteQueue(db)
    await queue.open()
    try:
        await put_all(queue, [envelope(f"r{i}") for i in range(RECLAIM_EVERY)])
        for _ in range(RECLAIM_EVERY):
            await queue.ack("a", await queue.get("a", 1, 0))
        assert log_rows(db) == 0
        assert await queue.lag("a") == 0
    finally:
        await queue.aclose()


async def test_sqlite_log_keeps_rows_a_slower_consumer_has_not_acknowledged(db: Path) -> None:
    queue = SQLiteQueue(db)
    await queue.open()
    try:
        sent = [envelope(f"r{i}") for i in range(RECLAIM_EVERY)]
        await put_all(queue, sent)
        await queue.ack("b", await queue.get("b", 10, 0))
        for _ in range(RECLAIM_EVERY - 1):
            await queue.ack("a", await queue.get("a", 1, 0))
        await queue.ack("a", await queue.get("a", 1, 0))  # the ack that reclaims
        assert log_rows(db) == RECLAIM_EVERY - 10
        await queue.nack("b")
        assert envelopes_of(await queue.get("b", 1000, 0)) == sent[10:]
    finally:
        await queue.aclose()


class BatchRecordingQueue(SQLiteQueue):
    """Records the size of every batch the writer commits (an observation; it writes as usual)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def _write_batch(self, items: list[Any]) -> list[bool]:
        self.batches.append(len(items))
        return super()._write_batch(items)


async def test_sqlite_concurrent_puts_share_commits(db: Path) -> None:
    queue = BatchRecordingQueue(db)
    await queue.open()
    try:
        results = await asyncio.gather(*(queue.put(envelope(f"r{i}")) for i in range(500)))
        assert results == [True] * 500
        assert sum(queue.batches) == 500
        assert len(queue.batches) < 50
        assert max(queue.batches) > 1
    finally:
        await queue.aclose()


CHILD_PUTS = """
import asyncio, sys
from tests.factories import envelope
from trackd.queue.sqlite import SQLiteQueue

async def main():
    queue = SQLiteQueue(sys.argv[1])
    await queue.open()
    for i in range(int(sys.argv[2])):
        assert await queue.put(envelope(f"child-{i}"))
    await queue.aclose()

asyncio.run(main())
"""


async def test_sqlite_reader_sees_every_put_of_another_process_on_the_same_file(
    db: Path,
) -> None:
    queue = SQLiteQueue(db)
    await queue.open()
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_PUTS, str(db), "300"], cwd=Path(__file__).parents[2]
        )
        try:
            mine = [envelope(f"parent-{i}") for i in range(100)]
            await put_all(queue, mine)
            got = await drain(queue, "processor", 400, deadline=60)
        finally:
            assert child.wait(timeout=60) == 0
        ids = [d.envelope.request_id for d in got]
        assert sorted(ids) == sorted(
            [f"child-{i}" for i in range(300)] + [e.request_id for e in mine]
        )
        assert [i for i in ids if i.startswith("child-")] == [f"child-{i}" for i in range(300)]
        assert [i for i in ids if i.startswith("parent-")] == [e.request_id for e in mine]
        assert await queue.get("processor", 10, 0) == []
    finally:
        await queue.aclose()


class FullDiskQueue(SQLiteQueue):
    """Fault injection: the writer's connection may not grow the file past its size at open,
    as on a full disk (SQLite answers SQLITE_FULL). A real full disk cannot be made in a test,
    and a read-only directory does not stop root. `free_space` lifts the cap."""

    def _open_writer(self) -> sqlite3.Connection:
        conn = super()._open_writer()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    async def free_space(self) -> None:
        def lift() -> None:
            self._wconn.execute("PRAGMA max_page_count = 1073741823")

        await self._on_writer(lift)  # on the writer's thread, between its batches


async def test_sqlite_put_the_disk_refuses_raises_and_keeps_nothing(db: Path) -> None:
    queue = FullDiskQueue(db)
    await queue.open()
    try:
        big = envelope("big", blob="x" * 200_000)
        with pytest.raises(QueueUnavailable):
            await queue.put(big, idempotent=True)
        assert await queue.lag("processor") == 0
        assert await queue.get("processor", 10, 0) == []
        assert await queue.remembered("big") is None

        await queue.free_space()
        assert await queue.put(big, idempotent=True) is True
        assert await queue.ready() is True
        assert envelopes_of(await queue.get("processor", 10, 0)) == [big]
    finally:
        await queue.aclose()


async def test_a_queue_made_before_fingerprints_takes_them_and_keeps_its_old_keys(
    tmp_path: Path,
) -> None:
    """A data dir from before fingerprints: its dedupe table gains the column on open, and a
    key remembered then matches any request (answered as a replay, as before)."""
    db = tmp_path / "queue.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE dedupe (request_id TEXT PRIMARY KEY, created REAL NOT NULL)")
        conn.execute("INSERT INTO dedupe VALUES ('old', ?)", (time.time(),))
    queue = SQLiteQueue(db)
    await queue.open()
    try:
        assert await queue.remembered("old") == ""
        assert await queue.put(envelope("new"), idempotent=True, fingerprint="fp") is True
        assert await queue.remembered("new") == "fp"
    finally:
        await queue.aclose()
