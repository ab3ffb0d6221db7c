"""The edge's side of the request log (issue 13 item 1): recorded on every `/v1` answer to a
known workspace, written off the hot path.

`RequestRecorder.record` only appends to a bounded in-memory buffer and adds to per-minute
counts; a background task writes both to the store (`trackd.store.base.RequestLog`) every
`FLUSH_SECONDS`, or sooner once `FLUSH_AT` entries wait. A 200 never waits for it. Of each
workspace only the newest `keep` entries of a flush are written (the store would keep no
more), so under load the store's work per flush is bounded whatever the rate. When
the buffer is full (the store is slow or down, or a flood outruns it) the oldest entry goes and
`EdgeCounters.request_log_dropped` counts it (`trackd_request_log_dropped_total`); a batch the
store refuses is dropped and counted the same way, never retried without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from trackd.edge.metrics import EdgeCounters
from trackd.models import RequestEntry
from trackd.store.base import MinuteCounts, RequestLog

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
FLUSH_AT = 5000
MINUTE_MS = 60_000


class RequestRecorder:
    def __init__(
        self, store: RequestLog, counters: EdgeCounters, *, keep: int, buffer: int
    ) -> None:
        self.store = store
        self.counters = counters
        self.keep = keep  # entries kept per workspace; 0: none are recorded
        self.buffer: deque[RequestEntry] = deque()
        self.capacity = buffer
        #: (workspace, minute start) -> [accepted events, accepted requests, rejected requests]
        self.minutes: dict[tuple[str, int], list[int]] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def record(self, entry: RequestEntry, accepted_events: int) -> None:
        """Called for every answer to a known workspace, on the event loop: never blocks."""
        key = (entry.workspace_id, entry.at - entry.at % MINUTE_MS)
        counts = self.minutes.get(key)
        if counts is None:
            counts = self.minutes[key] = [0, 0, 0]
        if entry.status == 200:
            counts[0] += accepted_events
            counts[1] += 1
        else:
            counts[2] += 1
        if not self.keep:
            return
        buffer = self.buffer
        if len(buffer) >= self.capacity:
            buffer.popleft()
            self.counters.request_log_dropped += 1
        buffer.append(entry)
        if len(buffer) >= FLUSH_AT:
            self._wake.set()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="trackd-request-log")

    async def stop(self) -> None:
        """Write what is buffered, then stop (not cancelled mid-write)."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        entries = _newest(self.buffer, self.keep)
        self.buffer.clear()
        minutes: dict[tuple[str, int], MinuteCounts] = {
            key: (a, b, c) for key, (a, b, c) in self.minutes.items()
        }
        self.minutes = {}
        try:
            await self.store.add_minutes(minutes)
        except Exception:
            log.exception("could not record the per-minute counts of %d minutes", len(minutes))
        try:
            await self.store.append(entries, self.keep)
        except Exception:
            log.exception("could not record %d requests in the request log", len(entries))
            self.counters.request_log_dropped += len(entries)


def _newest(buffer: deque[RequestEntry], keep: int) -> list[RequestEntry]:
    """The newest `keep` entries of each workspace in `buffer`, in order."""
    if len(buffer) <= keep:
        return list(buffer)
    seen: dict[str, int] = {}
    newest = []
    for entry in reversed(buffer):
        n = seen.get(entry.workspace_id, 0)
        if n < keep:
            seen[entry.workspace_id] = n + 1
            newest.append(entry)
    newest.reverse()
    return newest
