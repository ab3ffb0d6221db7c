"""The ASGI application: routes, and the lifespan that opens and closes its parts.

It is handed its parts (`trackd.services.Services`, the composition root) and opens nothing by
itself. Startup opens them, loads the workspaces, and starts the processor when it runs
inline (it runs in whichever process holds the data dir's lease).

Shutdown order (uvicorn has already stopped accepting and finished in-flight requests, each of
them durable or rejected): stop watching workspaces and flushing counters, stop the processor
(the batch in hand finishes within a bound; the rest stays unacknowledged for redelivery), close
the queue (its pending group commit finishes first), the limiter, then the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Protocol

from trackd.edge import metrics
from trackd.edge.admission import Admission
from trackd.edge.console import Console
from trackd.edge.http import Receive, Scope, Send, encode, header_map, send_json
from trackd.edge.openapi import openapi_document
from trackd.edge.read import PREFIX as READ_PREFIX
from trackd.edge.read import ReadAPI, workspace_stats
from trackd.edge.registry import WorkspaceRegistry
from trackd.edge.request_log import RequestRecorder
from trackd.edge.track import TrackEndpoint
from trackd.edge.v1 import V1_ROUTES, Router, V1Route
from trackd.errors import ContractError
from trackd.limiter.base import Limiter
from trackd.queue.base import Queue
from trackd.settings import Settings
from trackd.store.base import EventStore, RequestLog, WorkspaceStore
from trackd.wire import contract
from trackd.wire.auth import admin_bearer

log = logging.getLogger(__name__)

COUNTER_FLUSH_SECONDS = 1.0
ALLOW_POST = (b"allow", b"POST")
ALLOW_GET = (b"allow", b"GET, HEAD")


class Parts(Protocol):
    """What the app runs on, as the composition root (`trackd.services.Services`) gives it."""

    settings: Settings
    workspaces: WorkspaceStore
    events: EventStore
    queue: Queue
    limiter: Limiter
    request_log: RequestLog

    async def open(self) -> None: ...

    async def start_processing(self) -> None: ...

    async def stop_processing(self) -> None: ...

    async def aclose(self) -> None: ...


class TrackdApp:
    def __init__(self, parts: Parts, routes: Iterable[V1Route] = V1_ROUTES) -> None:
        self.parts = parts
        self.settings = settings = parts.settings
        self.store = parts.workspaces
        self.events = parts.events
        self.queue = parts.queue
        self.limiter = parts.limiter
        self.registry = WorkspaceRegistry(self.store, settings.registry_refresh_seconds)
        self.counters = metrics.EdgeCounters()
        self.admission = Admission(
            self.counters,
            max_in_flight=settings.max_in_flight_requests,
            max_wait=settings.max_wait_seconds,
            hold=settings.shed_hold_seconds,
        )
        # -- Request log (issue 13 item 1) --
        self.recorder = RequestRecorder(
            parts.request_log,
            self.counters,
            keep=settings.request_log_size,
            buffer=settings.request_log_buffer,
        )
        routes = tuple(routes)
        self.router = Router(routes)
        self.v1 = {
            route: TrackEndpoint(
                self.registry,
                self.limiter,
                self.queue,
                settings.max_body_bytes,
                self.counters,
                route,
                self.recorder,
                self.events,
            )
            for route in routes
        }
        self.read = ReadAPI(
            self.registry, self.events, self.queue, settings.admin_token, self.stats
        )
        self.read.console(parts.request_log, self.limiter)  # issue 13
        self._openapi = encode(openapi_document(routes))
        self.console = Console()  # -- the web console (issue 13) --
        self._flusher: asyncio.Task[None] | None = None
        self._stop_flushing = asyncio.Event()
        self.started = False

    async def stats(self, workspace_id: str) -> dict[str, int | float]:
        return await workspace_stats(self.events, self.queue, workspace_id)

    async def startup(self) -> None:
        await self.parts.open()
        await self.registry.start()
        await self.parts.start_processing()
        await self.recorder.start()
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
        await self.recorder.stop()
        await self.parts.stop_processing()
        await self.parts.aclose()

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

    def fast_endpoint(self, path: str) -> TrackEndpoint | None:
        """The `/v1` endpoint a `POST` to `path` goes to on the protocol's fast path
        (`trackd.edge.protocol.FastCycle`: the same admission, core and answer, no ASGI), or
        None: ASGI's road (`_route`)."""
        if not self.settings.fast_path:
            return None
        matched = self.router.match(path)
        return None if matched is None else self.v1[matched[0]]

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        matched = self.router.match(path)
        if matched is not None:
            route, _ = matched
            if method == "POST":  # through admission control: refused at once when behind
                await self.admission(self.v1[route], scope, receive, send)
            else:
                await _error(send, contract.method_not_allowed(), [ALLOW_POST])
        elif path.startswith(READ_PREFIX):
            await self.read(scope, receive, send)
        elif self.console.handles(path):  # -- the web console (issue 13) --
            await self.console(scope, receive, send)
        elif method not in ("GET", "HEAD"):
            if path in _GETS:
                await _error(send, contract.method_not_allowed(), [ALLOW_GET])
            else:
                await _error(send, _nf())
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
            await _error(send, contract.admin_token_required())
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
        if not self.settings.admin_token:
            return True
        return bool(
            admin_bearer(header_map(scope).get(b"authorization"), self.settings.admin_token)
        )

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
