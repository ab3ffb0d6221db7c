"""An in-process Limiter: exact for one process (the embedded default with one worker).

Each key keeps its one-second buckets with their running total and the oldest bucket that
counts, so an admission is a few additions: the window's buckets are walked only when a second
goes by (to drop the bucket that left the window) or on a refund.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from trackd.limiter.base import WINDOW_SECONDS, Decision
from trackd.limiter.window import decide, take_back


class _Window:
    __slots__ = ("buckets", "oldest", "pruned", "used")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.used = 0  # the sum of `buckets`
        self.oldest: int | None = None  # the first second whose bucket counts (> 0)
        self.pruned: int | None = None  # the second of the last pruning

    def prune(self, now: int) -> None:
        if self.pruned == now:
            return
        self.pruned = now
        stale = [s for s in self.buckets if s <= now - WINDOW_SECONDS]
        if stale:
            for second in stale:
                del self.buckets[second]
            self.recount()

    def recount(self) -> None:
        self.used = sum(self.buckets.values())
        self.oldest = min((s for s, n in self.buckets.items() if n > 0), default=None)


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def open(self) -> None:
        pass

    async def ready(self) -> bool:
        return True  # nothing outside the process to wait for

    def _live(self, key: str, now: int) -> _Window:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        window.prune(now)
        return window

    async def acquire(self, key: str, cost: int, limit: int) -> Decision:
        now = int(self._clock())
        window = self._live(key, now)
        if window.used + cost > limit:  # refused: the exact wait, from the shared window code
            return decide(window.buckets, now, cost, limit)
        decision = _admitted(window, now, cost, limit)
        if cost:
            window.buckets[now] = window.buckets.get(now, 0) + cost
            window.used += cost
            if window.oldest is None or now < window.oldest:
                window.oldest = now
        return decision

    async def peek(self, key: str, limit: int) -> Decision:
        now = int(self._clock())
        window = self._live(key, now)
        if window.used > limit:
            return decide(window.buckets, now, 0, limit)
        return _admitted(window, now, 0, limit)

    async def refund(self, key: str, cost: int) -> None:
        window = self._windows.get(key)
        if window is not None:
            window.buckets.update(take_back(window.buckets, cost))
            window.recount()

    async def aclose(self) -> None:
        self._windows.clear()


def _admitted(window: _Window, now: int, cost: int, limit: int) -> Decision:
    """`window.decide` for an admitted cost, from the running totals."""
    if window.oldest is not None:
        reset = window.oldest + WINDOW_SECONDS - now
    else:
        reset = WINDOW_SECONDS if cost > 0 else 0
    return Decision(True, limit, limit - window.used - cost, reset)
