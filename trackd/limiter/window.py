"""The sliding window every limiter adapter shares: counts in one-second buckets.

A bucket stamped second `s` counts until second `s + 60`. The bucket of the current second is
counted whole, so the window never under-counts: no 60-second span admits more than the limit.
"""

from __future__ import annotations

from collections.abc import Mapping

from trackd.limiter.base import WINDOW_SECONDS, Decision


def decide(buckets: Mapping[int, int], now: int, cost: int, limit: int) -> Decision:
    """Whether `cost` more events fit the window ending at second `now` (buckets already live)."""
    used = sum(n for s, n in buckets.items() if s > now - WINDOW_SECONDS)
    allowed = used + cost <= limit
    if allowed:
        live = [s for s in buckets if s > now - WINDOW_SECONDS and buckets[s] > 0]
        reset = min(live) + WINDOW_SECONDS - now if live else 0
        if cost > 0 and not live:
            reset = WINDOW_SECONDS
        return Decision(True, limit, limit - used - cost, reset)
    return Decision(False, limit, max(limit - used, 0), _wait(buckets, now, used + cost - limit))


def _wait(buckets: Mapping[int, int], now: int, excess: int) -> int:
    """Seconds until enough old buckets leave the window to free `excess` events."""
    freed = 0
    for second in sorted(s for s in buckets if s > now - WINDOW_SECONDS):
        freed += buckets[second]
        if freed >= excess:
            return second + WINDOW_SECONDS - now
    return WINDOW_SECONDS  # a cost above the limit itself never fits


def take_back(buckets: dict[int, int], cost: int) -> dict[int, int]:
    """Remove `cost` events from the newest buckets; returns the new counts of those touched."""
    changed: dict[int, int] = {}
    for second in sorted(buckets, reverse=True):
        if cost <= 0:
            break
        taken = min(buckets[second], cost)
        changed[second] = buckets[second] - taken
        cost -= taken
    return changed
