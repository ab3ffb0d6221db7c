"""An in-process Limiter: exact for one process (the embedded default with one worker)."""

from __future__ import annotations

import time
from collections.abc import Callable

from trackd.limiter.base import WINDOW_SECONDS, Decision
from trackd.limiter.window import decide, take_back


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, dict[int, int]] = {}

    async def open(self) -> None:
        pass

    def _live(self, key: str, now: int) -> dict[int, int]:
        buckets = self._buckets.setdefault(key, {})
        for second in [s for s in buckets if s <= now - WINDOW_SECONDS]:
            del buckets[second]
        return buckets

    async def acquire(self, key: str, cost: int, limit: int) -> Decision:
        now = int(self._clock())
        buckets = self._live(key, now)
        decision = decide(buckets, now, cost, limit)
        if decision.allowed and cost:
            buckets[now] = buckets.get(now, 0) + cost
        return decision

    async def peek(self, key: str, limit: int) -> Decision:
        now = int(self._clock())
        return decide(self._live(key, now), now, 0, limit)

    async def refund(self, key: str, cost: int) -> None:
        buckets = self._buckets.get(key, {})
        buckets.update(take_back(buckets, cost))

    async def aclose(self) -> None:
        self._buckets.clear()
