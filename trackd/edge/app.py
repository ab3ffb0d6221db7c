"""The ASGI application: routes, and the lifespan that opens and closes everything.

Startup opens the stores, the queue and the limiter, loads the workspaces, and (embedded) starts
the processor, which runs in whichever process holds the data dir's lease.

Shutdown order (uvicorn has already stopped accepting and finished in-flight requests, each of
them durable or rejected): stop watching workspaces and flushing counters, stop the processor
(the batch in hand finishes within a bound; the rest stays unacknowledged for redelivery), close
the queue (its pending group commit finishes first), the limiter, then the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os

from trackd.edge import metrics
from trackd.edge.admission import Admission
from trackd.edge.http import Receive, Scope, Send, encode, header_map, send_json
from trackd.edge.openapi import openapi_document
from trackd.edge.read import PREFIX as READ_PREFIX
from trackd.edge.read import ReadAPI, workspace_stats
from trackd.edge.registry import WorkspaceRegistry
from trackd.edge.track import TrackEndpoint
from trackd.embedded import FileLease
from trackd.errors import ContractError
from trackd.limiter import Limiter, open_limiter
from trackd.processor.runner import Processor
from trackd.processor.service import ProcessorService
from trackd.queue import Queue, open_queue
from trackd.settings import SETTINGS_ENV, Settings
from trackd.store import EventStore, WorkspaceStore, open_event_store, open_workspace_store
from trackd.wire import contract

log = logging.getLogger(__name__)

V1_PREFIXES = ("/v1/event/", "/v1/customer/")
COUNTER_FLUSH_SECONDS = 1.0


class TrackdApp:
    def __init__(
        self,
        settings: Settings,
        *,
        store: WorkspaceStore | None = None,
        events: EventStore | None = None,
        queue: Queue | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_workspace_store(settings.store_url())
        self.events = events or open_event_store(settings.store_url())
        self.queue = queue or open_queue(settings.queue_url(), settings)
        self.limiter = limiter or open_limiter(settings.limiter_url())
        self.registry = WorkspaceRegistry(self.store, settings.registry_refresh_seconds)
        self.counters = metrics.EdgeCounters()
        self.admission = Admission(
            self.counters,
            max_in_flight=settings.max_in_flight_requests,
            max_wait=settings.max_wait_seconds,
            hold=settings.shed_hold_seconds,
        )
        self.v1 = {
            prefix: TrackEndpoint(
                self.registry,
                self.limiter,
                self.queue,
                settings.max_body_bytes,
                self.counters,
                kind=prefix.split("/")[2],
            )
            for prefix in V1_PREFIXES
        }
        self.read = ReadAPI(
            self.registry, self.events, self.queue, settings.admin_token or None, self.stats
        )
        self.processing: ProcessorService | None = None
        if settings.embedded_processor() and settings.processor == "inline":
            lease = FileLease(settings.data_path / "processor.lease")
            self.processing = ProcessorService(Processor(self.queue, self.events), lease)
        self._openapi = encode(openapi_document())
        self._flusher: asyncio.Task[None] | None = None
        self._stop_flushing = asyncio.Event()
        self.started = False

    async def stats(self, workspace_id: str) -> dict[str, int | float]:
        return await workspace_stats(self.events, self.queue, workspace_id)

    async def startup(self) -> None:
        await self.store.open()
        await self.events.open()
        await self.queue.open()
        await self.limiter.open()
        await self.registry.start()
        if self.processing is not None:
            await self.processing.start()
        self._stop_flushing.clear()
        self._flusher = asyncio.create_task(self._flush_counters(), name="trackd-counters")
        self.started = True

    async def shutdown(self) -> None:
        self.started = False
        await self.registry.stop()
        if self._flusher is not None:  # not cancelled: a cancelled write loses its counts
            self._stop_flushing.set()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush_once()
        if self.processing is not None:
            await self.processing.stop(self.settings.graceful_timeout_seconds)
        await self.queue.aclose()
        await self.limiter.aclose()
        await self.events.aclose()
        await self.store.aclose()

    async def _flush_counters(self) -> None:
        while not self._stop_flushing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_flushing.wait(), COUNTER_FLUSH_SECONDS)
            await self._flush_once()

    async def _flush_once(self) -> None:
        taken = self.counters.take_rejected()
        try:
            await self.events.add_counts(taken)
        except Exception:  # a full disk, say: kept for the next flush
            log.exception("could not record %d rejection counts", sum(taken.values()))
            for (workspace_id, _), n in taken.items():
                self.counters.rejected[workspace_id] += n

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._route(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        prefix, _, workspace_id = path.rpartition("/")
        endpoint = self.v1.get(prefix + "/")
        if endpoint is not None and workspace_id:
            if method == "POST":  # through admission control: refused at once when behind
                await self.admission(endpoint, scope, receive, send, workspace_id)
            else:
                await _error(send, contract.method_not_allowed(), [(b"allow", b"POST")])
        elif path.startswith(READ_PREFIX):
            await self.read(scope, receive, send)
        elif method not in ("GET", "HEAD"):
            await _error(send, contract.method_not_allowed() if path in _GETS else _nf())
        elif path in _GETS:
            await self._service_route(path, scope, send)
        else:
            await _error(send, _nf())

    async def _service_route(self, path: str, scope: Scope, send: Send) -> None:
        if path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":  # keeping up, and the queue and the limiter can take requests
            ready = (
                self.started
                and self.admission.ready()
                and await self.queue.ready()
                and await self.limiter.ready()
            )
            body = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
            await send_json(send, 200 if ready else 503, body)
        elif path == "/metrics" and not self._metrics_allowed(scope):
            await _error(send, ContractError(401, contract.AUTH, "Admin token required"))
        elif path == "/metrics":
            text = await metrics.render(self.counters, self.registry, self.events, self.queue)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", metrics.CONTENT_TYPE)],
                }
            )
            await send({"type": "http.response.body", "body": text})
        else:
            await send_json(send, 200, self._openapi)

    def _metrics_allowed(self, scope: Scope) -> bool:
        """`/metrics` names every workspace: with an admin token configured, only its bearer
        reads it (a Prometheus `authorization` setting); without one it is open, for a
        deployment that keeps the port private (docs/security.md)."""
        token = self.settings.admin_token
        if not token:
            return True
        header = header_map(scope).get(b"authorization", b"")
        if header[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(header[7:].strip(), token.encode())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                with contextlib.suppress(Exception):
                    await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


_GETS = {"/healthz", "/readyz", "/openapi.json", "/metrics"}


def _nf() -> ContractError:
    return contract.not_found_route()


async def _error(send: Send, exc: ContractError, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    request_id = contract.new_request_id()
    body = encode(contract.error_body(exc, request_id))
    await send_json(send, exc.status, body, [*headers, (b"x-request-id", request_id.encode())])


def create_app(settings: Settings) -> TrackdApp:
    return TrackdApp(settings)


def from_environment() -> TrackdApp:
    """The factory each `--workers` process calls: the CLI hands settings down by env var."""
    from trackd.server import tune_gc  # the server imports this module

    app = TrackdApp(Settings.from_json(os.environ[SETTINGS_ENV]))
    tune_gc()
    return app
