"""The Limiter contract (trackd/limiter/base.py), run against every adapter, on a clock the
tests move by hand; then the SQLite limiter shared by several processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clock import Clock
from trackd.limiter.base import Decision, Limiter
from trackd.limiter.sqlite import SQLiteLimiter

pytestmark = pytest.mark.anyio


async def test_events_up_to_the_limit_are_admitted_within_a_window(limiter: Limiter) -> None:
    assert await limiter.acquire("WS1", 4, 10) == Decision(True, 10, 6, 60)
    assert await limiter.acquire("WS1", 6, 10) == Decision(True, 10, 0, 60)
    assert await limiter.acquire("WS1", 1, 10) == Decision(False, 10, 0, 60)


async def test_a_request_that_would_exceed_the_limit_is_rejected_whole_and_counts_nothing(
    limiter: Limiter,
) -> None:
    assert await limiter.acquire("WS1", 7, 10) == Decision(True, 10, 3, 60)
    assert await limiter.acquire("WS1", 5, 10) == Decision(False, 10, 3, 60)
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 3, 60)
    assert await limiter.acquire("WS1", 3, 10) == Decision(True, 10, 0, 60)


async def test_reset_is_the_seconds_until_the_oldest_counted_bucket_leaves(
    limiter: Limiter, clock: Clock
) -> None:
    assert await limiter.acquire("WS1", 3, 10) == Decision(True, 10, 7, 60)
    clock.advance(20)
    assert await limiter.acquire("WS1", 2, 10) == Decision(True, 10, 5, 40)
    # Rejected: 6 more need 1 freed, which the first bucket frees in 40 s.
    assert await limiter.acquire("WS1", 6, 10) == Decision(False, 10, 5, 40)
    clock.advance(10)
    # 8 more need 3 freed: the first bucket (3) leaves in 30 s.
    assert await limiter.acquire("WS1", 8, 10) == Decision(False, 10, 5, 30)
    # 9 more need 4 freed: only when the second bucket (2) leaves too, in 50 s.
    assert await limiter.acquire("WS1", 9, 10) == Decision(False, 10, 5, 50)


async def test_peek_reports_the_window_and_counts_nothing(limiter: Limiter) -> None:
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
    await limiter.acquire("WS1", 4, 10)
    for _ in range(3):
        assert await limiter.peek("WS1", 10) == Decision(True, 10, 6, 60)
    assert await limiter.acquire("WS1", 6, 10) == Decision(True, 10, 0, 60)
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 0, 60)


async def test_the_window_slides_so_events_leave_it_after_60_seconds(
    limiter: Limiter, clock: Clock
) -> None:
    assert await limiter.acquire("WS1", 10, 10) == Decision(True, 10, 0, 60)
    clock.advance(59)
    assert await limiter.acquire("WS1", 1, 10) == Decision(False, 10, 0, 1)
    clock.advance(1)
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
    assert await limiter.acquire("WS1", 10, 10) == Decision(True, 10, 0, 60)
    assert await limiter.acquire("WS1", 1, 10) == Decision(False, 10, 0, 60)


async def test_no_60_second_span_admits_more_than_the_limit(limiter: Limiter, clock: Clock) -> None:
    admitted: list[tuple[int, int]] = []  # (second, events) admitted
    for _ in range(300):  # 150 s, a request of 3 events every half second
        if (await limiter.acquire("WS1", 3, 50)).allowed:
            admitted.append((int(clock()), 3))
        clock.advance(0.5)
    assert sum(n for _, n in admitted) > 50  # the window did slide
    for start, _ in admitted:
        assert sum(n for s, n in admitted if start <= s < start + 60) <= 50


async def test_a_cost_above_the_limit_never_fits(limiter: Limiter, clock: Clock) -> None:
    assert await limiter.acquire("WS1", 11, 10) == Decision(False, 10, 10, 60)
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
    await limiter.acquire("WS1", 5, 10)
    clock.advance(120)
    assert await limiter.acquire("WS1", 11, 10) == Decision(False, 10, 10, 60)


async def test_refund_gives_back_the_events_of_the_newest_buckets(
    limiter: Limiter, clock: Clock
) -> None:
    await limiter.acquire("WS1", 4, 10)
    clock.advance(1)
    await limiter.acquire("WS1", 3, 10)
    await limiter.refund("WS1", 5)  # 3 from the newest second, 2 from the one before
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 8, 59)
    await limiter.refund("WS1", 50)  # never below zero
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 10, 0)
    assert await limiter.acquire("WS1", 10, 10) == Decision(True, 10, 0, 60)


async def test_keys_are_counted_apart(limiter: Limiter) -> None:
    assert await limiter.acquire("WS1", 10, 10) == Decision(True, 10, 0, 60)
    assert await limiter.acquire("WS2", 4, 10) == Decision(True, 10, 6, 60)
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 0, 60)


async def test_concurrent_acquires_never_admit_more_than_the_limit(limiter: Limiter) -> None:
    decisions = await asyncio.gather(*(limiter.acquire("WS1", 1, 25) for _ in range(40)))
    assert sum(d.allowed for d in decisions) == 25
    assert await limiter.peek("WS1", 25) == Decision(True, 25, 0, 60)


async def test_an_open_limiter_whose_engine_answers_is_ready_and_ready_counts_nothing(
    limiter: Limiter,
) -> None:
    assert await limiter.ready() is True
    await limiter.acquire("WS1", 4, 10)
    assert await limiter.ready() is True
    assert await limiter.peek("WS1", 10) == Decision(True, 10, 6, 60)


async def test_aclose_is_idempotent(limiter: Limiter) -> None:
    await limiter.acquire("WS1", 1, 10)
    await limiter.aclose()
    await limiter.aclose()


# -- SQLite only ------------------------------------------------------------------------------


async def test_a_sqlite_limiter_is_ready_only_while_open(tmp_path: Path) -> None:
    limiter = SQLiteLimiter(tmp_path / "limiter.db")
    assert await limiter.ready() is False
    await limiter.open()
    assert await limiter.ready() is True
    await limiter.aclose()
    assert await limiter.ready() is False


async def test_sqlite_limiters_on_one_file_share_their_counts(tmp_path: Path) -> None:
    clock = Clock()
    first = SQLiteLimiter(tmp_path / "limiter.db", clock=clock)
    second = SQLiteLimiter(tmp_path / "limiter.db", clock=clock)
    await first.open()
    await second.open()
    try:
        assert await first.acquire("WS1", 6, 10) == Decision(True, 10, 4, 60)
        assert await second.acquire("WS1", 5, 10) == Decision(False, 10, 4, 60)
        assert await second.acquire("WS1", 4, 10) == Decision(True, 10, 0, 60)
        assert await first.peek("WS1", 10) == Decision(True, 10, 0, 60)
    finally:
        await first.aclose()
        await second.aclose()


CHILD_ACQUIRES = """
import asyncio, sys
from trackd.limiter.sqlite import SQLiteLimiter

async def main():
    limiter = SQLiteLimiter(sys.argv[1], clock=lambda: 1_700_000_000.0)
    await limiter.open()
    print("ready", flush=True)
    sys.stdin.readline()  # both processes start acquiring together
    admitted = 0
    for _ in range(600):
        admitted += (await limiter.acquire("WS1", 1, 500)).allowed
    await limiter.aclose()
    print(admitted)

asyncio.run(main())
"""


def test_sqlite_two_processes_sharing_the_file_never_admit_more_than_the_limit(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "limiter.db")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_ACQUIRES, db],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = []
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for child in children:
            assert child.stdout is not None and child.stdin is not None
            counts.append(int(child.stdout.read()))
            child.stdin.close()
            assert child.wait(timeout=90) == 0
    finally:  # a failure here must not leave pipes for a later test's garbage collection
        for child in children:
            child.kill()
            with child:  # closes its pipes and reaps it
                pass
    assert sum(counts) == 500
