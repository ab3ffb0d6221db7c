"""The processing loop: take envelopes in queue order, apply them, then acknowledge.

Acknowledge only after the store has committed (`trackd.processor.apply`), so a crash between
the two redelivers the batch, and the store's `processed` check makes the redelivery change
nothing. On a store failure the batch is rewound (`nack`) and retried after a pause that
doubles up to a bound.

A batch is bounded by events as well as envelopes: it takes envelopes in order until they hold
`batch_events` events (at least one envelope, however large), so one transaction, the time
planning holds the event loop, and the disk space a commit needs stay bounded whatever the
envelopes' sizes; a batch that does not fit on a nearly full disk is not retried whole forever,
smaller ones make progress. After a failed batch the bound halves (down to one envelope), and
it doubles back after each batch that commits: a batch that cannot fit the disk's free space
(its WAL copy and its pages) is retried smaller, not whole forever. What a `get` returned beyond
the bound is kept, in order, for the next batch; the number of envelopes asked for follows the
envelopes' recent size so that this stays rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator

from trackd.models import Plan
from trackd.processor import deletes
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.queue.base import PROCESSOR, Delivery, Queue
from trackd.store.base import EventStore

log = logging.getLogger(__name__)

CONSUMER = PROCESSOR
MAX_BACKOFF_SECONDS = 5.0
#: Envelopes per batch at most, and events per batch at most (an envelope counts at least one).
BATCH_ENVELOPES = 10_000
BATCH_EVENTS = 10_000
#: Seconds between two sweeps of due hard deletes (Delete User, `trackd.processor.deletes`).
SWEEP_SECONDS = 1.0
#: Events planned between two yields to the event loop.
PLAN_SLICE_EVENTS = 1_000
FIRST_GET = 100  # envelopes asked for before their size is known
GET_SLICE_EVENTS = 2_000  # events asked for in one `get`, at the envelopes' recent size


def weight(delivery: Delivery) -> int:
    """What an envelope counts against `batch_events`: its events, at least one (a Track User
    update, or a request whose every event was dropped, is still a transaction's work)."""
    envelope = delivery.envelope
    if envelope.elements:  # Bulk Import: its elements' (`Kind.BULK`)
        return sum(len(e.actions) or 1 for e in envelope.elements)
    return len(envelope.actions) or 1


class Processor:
    def __init__(
        self,
        queue: Queue,
        store: EventStore,
        *,
        batch_size: int = BATCH_ENVELOPES,
        batch_events: int = BATCH_EVENTS,
        consumer: str = CONSUMER,
    ) -> None:
        self.queue = queue
        self.store = store
        self.batch_size = batch_size
        self.batch_events = batch_events
        self.consumer = consumer
        self.processed_envelopes = 0
        self.busy = False  # between taking a batch and acknowledging it
        self._held: list[Delivery] = []  # taken from the queue, not yet in a batch
        self._limit = batch_events  # the bound now: smaller after a failed batch
        self._per_envelope = 0.0  # recent events per envelope (0: not known yet)
        # -- Delete User (data-api.md §4) --
        self.swept_users = 0
        self._next_sweep = 0.0  # monotonic time of the next sweep of due hard deletes

    async def run_once(self, timeout: float = 0.2) -> int:
        """Process at most one batch; returns how many envelopes it applied."""
        with _collector_held():
            return await self._run_once(timeout)

    async def _run_once(self, timeout: float) -> int:
        # -- Delete User (data-api.md §4): the due hard deletes, at most once a second --
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            self.swept_users += await deletes.sweep(self.store, int(time.time() * 1000))
        await self._take(timeout)
        if not self._held:
            return 0
        batch, self._held = _cut(self._held, self.batch_size, self._limit)
        self.busy = True
        try:
            await apply(self.store, await _plan(batch))
        except Exception:
            self._limit = max(1, min(self._limit, sum(weight(d) for d in batch)) // 2)
            await self._rewind()
            raise
        finally:
            self.busy = False
        self._limit = min(self.batch_events, self._limit * 2)
        try:
            await self.queue.ack(self.consumer, batch)
        except Exception:  # a full disk, say: taken again, and the store's check skips them
            await self._rewind()
            raise
        self.processed_envelopes += len(batch)
        return len(batch)

    async def _rewind(self) -> None:
        """The queue gives everything unacknowledged again, what is held included."""
        self._held = []
        await self.queue.nack(self.consumer)

    async def _take(self, timeout: float) -> None:
        """Fill what is held up to about one batch: as many envelopes as the room left holds
        at their recent size (a few at first), in gets of about `GET_SLICE_EVENTS` events (the
        queue decodes what it returns on the event loop). Only an empty hand waits."""
        room = self._limit - sum(weight(d) for d in self._held)
        slots = self.batch_size - len(self._held)
        while room > 0 and slots > 0:
            if self._per_envelope:
                want = int(min(room, GET_SLICE_EVENTS) / self._per_envelope)
            else:
                want = FIRST_GET
            want = max(1, min(slots, want))
            taken = await self.queue.get(self.consumer, want, 0 if self._held else timeout)
            if not taken:
                return
            events = sum(weight(d) for d in taken)
            self._per_envelope = events / len(taken)
            self._held.extend(taken)
            if len(taken) < want:
                return  # that is all there is for now
            room, slots = room - events, slots - len(taken)

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


@contextlib.contextmanager
def _collector_held() -> Iterator[None]:
    """Python's cyclic garbage collector waits during `run_once`: while a batch is taken
    (decoded), planned and applied.

    A batch holds some 15 tracked objects per event (decoded envelopes, plans) for its whole
    life, so the collector would promote them and sweep them all, again and again: a third of
    the processor's CPU in bench/processor.py (a narrower hold, from after the queue's `get`,
    still left 5-7%). They are freed by reference counting when the batch ends, and the
    collector runs as usual at the next allocation after that (the next `run_once` call makes
    one), over a small heap: cycles made meanwhile, by the edge too when inline, are collected
    then, at least once per `run_once` (0.2 s when idle).
    """
    if not gc.isenabled():  # held already (another processor in this process), or off
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _cut(
    deliveries: list[Delivery], max_envelopes: int, max_events: int
) -> tuple[list[Delivery], list[Delivery]]:
    """The longest prefix within both bounds (at least one envelope), and the rest."""
    events = 0
    for count, delivery in enumerate(deliveries[:max_envelopes]):
        events += weight(delivery)
        if events > max_events and count:
            return deliveries[:count], deliveries[count:]
    return deliveries[:max_envelopes], deliveries[max_envelopes:]


async def _plan(batch: list[Delivery]) -> list[Plan]:
    """Plans of the batch, yielding to the event loop every `PLAN_SLICE_EVENTS` events."""
    plans = []
    since_yield = 0
    for delivery in batch:
        plans.append(plan(delivery.envelope))
        since_yield += weight(delivery)
        if since_yield >= PLAN_SLICE_EVENTS:
            since_yield = 0
            await asyncio.sleep(0)
    return plans
