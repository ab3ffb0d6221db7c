"""The memory limiter's running totals decide exactly what the shared window code decides over
the raw buckets, whatever the sequence of admissions, refunds and clock moves."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from trackd.limiter.base import WINDOW_SECONDS, Decision
from trackd.limiter.memory import MemoryLimiter
from trackd.limiter.window import decide, take_back


class Reference:
    """The window rules applied to plain buckets, recomputed from scratch on every call."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, int]] = {}

    def live(self, key: str, now: int) -> dict[int, int]:
        buckets = self.buckets.setdefault(key, {})
        for second in [s for s in buckets if s <= now - WINDOW_SECONDS]:
            del buckets[second]
        return buckets

    def acquire(self, key: str, cost: int, limit: int, now: int) -> Decision:
        buckets = self.live(key, now)
        decision = decide(buckets, now, cost, limit)
        if decision.allowed and cost:
            buckets[now] = buckets.get(now, 0) + cost
        return decision

    def peek(self, key: str, limit: int, now: int) -> Decision:
        return decide(self.live(key, now), now, 0, limit)

    def refund(self, key: str, cost: int) -> None:
        buckets = self.buckets.get(key, {})
        buckets.update(take_back(buckets, cost))


operations = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "acquire", "acquire", "peek", "refund"]),
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=40),  # cost
        st.integers(min_value=-3, max_value=40),  # clock step in seconds (backwards too)
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(operations=operations, limit=st.integers(min_value=0, max_value=100))
def test_the_memory_limiter_decides_as_the_window_rules(
    operations: list[tuple[str, str, int, int]], limit: int
) -> None:
    clock = [1_000_000.0]
    limiter = MemoryLimiter(clock=lambda: clock[0])
    reference = Reference()

    async def run() -> None:
        for operation, key, cost, step in operations:
            clock[0] += step
            now = int(clock[0])
            if operation == "acquire":
                assert await limiter.acquire(key, cost, limit) == reference.acquire(
                    key, cost, limit, now
                )
            elif operation == "peek":
                assert await limiter.peek(key, limit) == reference.peek(key, limit, now)
            else:
                await limiter.refund(key, cost)
                reference.refund(key, cost)

    asyncio.run(run())
