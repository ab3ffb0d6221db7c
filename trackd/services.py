"""The composition root: the one place that turns `Settings` into the parts trackd runs on.

Every process builds its parts here and nowhere else: `trackd serve` (the edge, and the
embedded processor where it runs), `trackd worker` (the processor alone), and the admin
commands (the workspace store). The edge is handed its parts (`trackd.edge.app.TrackdApp`
receives a `Services`) and opens nothing itself.

    Settings --> Services --> queue       (trackd.queue: sqlite, nats, memory)
                          --> workspaces  (trackd.store: sqlite, postgresql, memory)
                          --> events      (trackd.store)
                          --> limiter     (trackd.limiter: memory, sqlite, redis)
                          --> request_log (trackd.store: beside the events, the edge's log)
                          --> processing  (the processor, when it runs in this process)

Where the processor runs is decided once, by `processor_mode`.

Open order: stores, queue, limiter (then the caller starts processing). Close order, after the
processing has stopped: queue (its pending group commit finishes first), limiter, stores.
"""

from __future__ import annotations

import enum

from trackd.embedded import FileLease
from trackd.limiter import Limiter, open_limiter
from trackd.processor.runner import Processor
from trackd.processor.service import ProcessorService
from trackd.queue import Queue, open_queue
from trackd.settings import Settings
from trackd.store import (
    EventStore,
    RequestLog,
    WorkspaceStore,
    open_event_store,
    open_request_log,
    open_workspace_store,
)

LEASE_FILE = "processor.lease"


class ProcessorMode(enum.Enum):
    """Where the processor of a `trackd serve` runs."""

    INLINE = "inline"  # in the edge's own event loop (one process: tests)
    CHILD = "child"  # a `trackd worker` child process beside the edge (the embedded default)
    ELSEWHERE = "elsewhere"  # not here: off, or `trackd worker` processes of a shared queue


def processor_mode(settings: Settings) -> ProcessorMode:
    """An embedded queue is processed by `serve` itself (inline or as a child, by
    `settings.processor`); a shared engine's queue is processed by `trackd worker`."""
    if not settings.embedded_processor() or settings.processor == "off":
        return ProcessorMode.ELSEWHERE
    if settings.processor == "inline":
        return ProcessorMode.INLINE
    return ProcessorMode.CHILD


def lease(settings: Settings) -> FileLease | None:
    """Embedded, one process of the data dir processes at a time: the holder of its lease."""
    if not settings.embedded_processor():
        return None
    return FileLease(settings.data_path / LEASE_FILE)


def workspace_store(settings: Settings) -> WorkspaceStore:
    return open_workspace_store(settings.store_url())


def event_store(settings: Settings) -> EventStore:
    return open_event_store(settings.store_url())


class Services:
    """The parts of one trackd process. Any part not given is opened from `settings` by URL
    (tests hand in memory adapters)."""

    def __init__(
        self,
        settings: Settings,
        *,
        workspaces: WorkspaceStore | None = None,
        events: EventStore | None = None,
        queue: Queue | None = None,
        limiter: Limiter | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.settings = settings
        self.workspaces = workspaces or workspace_store(settings)
        self.events = events or event_store(settings)
        self.queue = queue or open_queue(settings.queue_url(), settings)
        self.limiter = limiter or open_limiter(settings.limiter_url())
        # -- Request log (issue 13 item 1) --
        self.request_log = request_log or open_request_log(settings.store_url())
        self.processing: ProcessorService | None = None
        if processor_mode(settings) is ProcessorMode.INLINE:
            self.processing = ProcessorService(Processor(self.queue, self.events), lease(settings))

    async def open(self) -> None:
        await self.workspaces.open()
        await self.events.open()
        await self.request_log.open()
        await self.queue.open()
        await self.limiter.open()

    async def start_processing(self) -> None:
        if self.processing is not None:
            await self.processing.start()

    async def stop_processing(self) -> None:
        """The batch in hand finishes within the graceful timeout; the rest stays
        unacknowledged for redelivery."""
        if self.processing is not None:
            await self.processing.stop(self.settings.graceful_timeout_seconds)

    async def aclose(self) -> None:
        await self.queue.aclose()
        await self.limiter.aclose()
        await self.request_log.aclose()
        await self.events.aclose()
        await self.workspaces.aclose()


class WorkerServices:
    """`trackd worker`: the queue, the event store and the processor over them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queue = open_queue(settings.queue_url(), settings)
        self.events = event_store(settings)
        self.processing = ProcessorService(Processor(self.queue, self.events), lease(settings))

    async def open(self) -> None:
        await self.events.open()
        await self.queue.open()
        await self.processing.start()

    async def aclose(self) -> None:
        """Finish the batch in hand (bounded), leave the rest unacknowledged, close."""
        await self.processing.stop(self.settings.graceful_timeout_seconds)
        await self.queue.aclose()
        await self.events.aclose()
