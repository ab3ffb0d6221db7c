"""An in-memory Queue for tests: the same contract as the others, minus surviving a crash."""

from __future__ import annotations

import asyncio
import time

from trackd.errors import QueueUnavailable
from trackd.models import Envelope
from trackd.queue.base import UNKNOWN, Backlog, Delivery


class MemoryQueue:
    def __init__(self, dedupe_seconds: float = 86400.0) -> None:
        self._log: list[Delivery] = []
        self._seq = 0
        self._dedupe: dict[str, tuple[float, str]] = {}  # request id: (when, fingerprint)
        self._dedupe_seconds = dedupe_seconds
        self._committed: dict[str, int] = {}
        self._cursor: dict[str, int] = {}
        self._appended = asyncio.Event()
        self._closed = False

    async def open(self) -> None:
        self._closed = False

    async def put(
        self, envelope: Envelope, *, idempotent: bool = False, fingerprint: str = UNKNOWN
    ) -> bool:
        if self._closed:
            raise QueueUnavailable("the queue is closed")
        if idempotent:
            if await self.remembered(envelope.request_id) is not None:
                return False
            self._dedupe[envelope.request_id] = (time.monotonic(), fingerprint)
        self._seq += 1
        self._log.append(Delivery(self._seq, Envelope.decode(envelope.encode())))
        self._appended.set()
        return True

    async def remembered(self, request_id: str) -> str | None:
        entry = self._dedupe.get(request_id)
        if entry is None or time.monotonic() - entry[0] >= self._dedupe_seconds:
            return None
        return entry[1]

    async def get(self, consumer: str, max_items: int, timeout: float) -> list[Delivery]:
        position = self._cursor.setdefault(consumer, self._committed.setdefault(consumer, 0))
        pending = [d for d in self._log if d.seq > position][:max_items]
        if not pending and timeout > 0:
            self._appended.clear()
            try:
                await asyncio.wait_for(self._appended.wait(), timeout)
            except TimeoutError:
                return []
            return await self.get(consumer, max_items, 0)
        if pending:
            self._cursor[consumer] = pending[-1].seq
        return pending

    async def ack(self, consumer: str, deliveries: list[Delivery]) -> None:
        if deliveries:
            last = max(d.seq for d in deliveries)
            self._committed[consumer] = max(self._committed.get(consumer, 0), last)
            low = min(self._committed.values())
            self._log = [d for d in self._log if d.seq > low]

    async def nack(self, consumer: str) -> None:
        self._cursor[consumer] = self._committed.get(consumer, 0)

    async def ready(self) -> bool:
        return not self._closed

    async def lag(self, consumer: str) -> int:
        position = self._committed.get(consumer, 0)
        return sum(1 for d in self._log if d.seq > position)

    async def backlog(self, consumer: str, workspace_id: str) -> Backlog:
        position = self._committed.get(consumer, 0)
        waiting = [
            d.envelope
            for d in self._log
            if d.seq > position and d.envelope.workspace_id == workspace_id
        ]
        return Backlog(
            len(waiting),
            sum(e.event_count for e in waiting),
            min((e.received_at for e in waiting), default=None),
        )

    # -- read-your-writes (Delete User, data-api.md §0) --

    async def head(self) -> int:
        return self._seq

    async def applied(self, consumer: str) -> int:
        return self._committed.get(consumer, 0)

    async def aclose(self) -> None:
        self._closed = True
