"""The processing loop: take envelopes in queue order, apply them, then acknowledge.

Acknowledge only after the store has committed, so a crash between the two redelivers the
batch, and the store's `processed` check makes the redelivery change nothing. On a store
failure the batch is rewound (`nack`) and retried after a pause that doubles up to a bound.
"""

from __future__ import annotations

import asyncio
import logging

from trackd.processor.plan import plan
from trackd.queue.base import Queue
from trackd.store.base import EventStore

log = logging.getLogger(__name__)

CONSUMER = "processor"
MAX_BACKOFF_SECONDS = 5.0


class Processor:
    def __init__(
        self, queue: Queue, store: EventStore, *, batch_size: int = 1000, consumer: str = CONSUMER
    ) -> None:
        self.queue = queue
        self.store = store
        self.batch_size = batch_size
        self.consumer = consumer
        self.processed_envelopes = 0
        self.busy = False  # between taking a batch and acknowledging it

    async def run_once(self, timeout: float = 0.2) -> int:
        """Process at most one batch; returns how many envelopes it applied."""
        deliveries = await self.queue.get(self.consumer, self.batch_size, timeout)
        if not deliveries:
            return 0
        self.busy = True
        try:
            await self.store.apply([plan(d.envelope) for d in deliveries])
        except Exception:
            await self.queue.nack(self.consumer)
            raise
        finally:
            self.busy = False
        try:
            await self.queue.ack(self.consumer, deliveries)
        except Exception:  # a full disk, say: taken again, and the store's check skips them
            await self.queue.nack(self.consumer)
            raise
        self.processed_envelopes += len(deliveries)
        return len(deliveries)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                await self.run_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("processing failed; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
