"""Running the processor beside the edge (embedded) or alone (`trackd worker`).

With a lease (the embedded default), only the process holding it processes; the others try to
take it every `retry_seconds`, so processing moves on by itself when the holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from trackd.processor.runner import Processor

log = logging.getLogger(__name__)


class Lease(Protocol):
    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


class ProcessorService:
    def __init__(
        self, processor: Processor, lease: Lease | None = None, retry_seconds: float = 0.5
    ) -> None:
        self.processor = processor
        self.lease = lease
        self.retry_seconds = retry_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._main(), name="trackd-processor")

    async def _main(self) -> None:
        while self.lease is not None and not self.lease.try_acquire():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.retry_seconds)
            if self._stop.is_set():
                return
        log.info("processor started")
        await self.processor.run(self._stop)

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the batch in hand finish (bounded), then hand back to the queue whatever was
        taken and not acknowledged: it comes again at once, to another worker of a shared queue,
        rather than after the queue's redelivery timeout (JetStream's `ack_wait`, 30 s)."""
        if self._task is None:
            return
        self._stop.set()
        if not self.processor.busy:  # idle: waiting for envelopes, nothing in hand
            self._task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        finally:
            self._task = None
            await self._hand_back()
            if self.lease is not None:
                self.lease.release()

    async def _hand_back(self) -> None:
        """`nack`: envelopes held for a next batch, or a batch the timeout cut off (the store
        skips it if it was committed), go back to the queue."""
        try:
            await self.processor.queue.nack(self.processor.consumer)
        except Exception:  # the queue is gone: they come again after its redelivery timeout
            log.exception("could not hand back unacknowledged envelopes")
