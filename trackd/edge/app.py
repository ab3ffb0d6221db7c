"""The ASGI application: routes, and the lifespan that opens and closes the backends.

Shutdown order (uvicorn has already stopped accepting and finished in-flight requests, each of
them durable or rejected): stop watching workspaces, close the queue (its pending group commit
finishes first), close the limiter, close the store.
"""

from __future__ import annotations

import logging
import os

from trackd.edge.http import Receive, Scope, Send, encode, send_json
from trackd.edge.openapi import openapi_document
from trackd.edge.registry import WorkspaceRegistry
from trackd.edge.track import TrackEndpoint, new_request_id
from trackd.errors import ContractError
from trackd.limiter import Limiter, open_limiter
from trackd.queue import Queue, open_queue
from trackd.settings import SETTINGS_ENV, Settings
from trackd.store import WorkspaceStore, open_workspace_store
from trackd.wire import contract

log = logging.getLogger(__name__)

EVENT_PREFIX = "/v1/event/"


class TrackdApp:
    def __init__(
        self,
        settings: Settings,
        *,
        store: WorkspaceStore | None = None,
        queue: Queue | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store or open_workspace_store(settings.store_url())
        self.queue = queue or open_queue(settings.queue_url(), settings)
        self.limiter = limiter or open_limiter(settings.limiter_url())
        self.registry = WorkspaceRegistry(self.store, settings.registry_refresh_seconds)
        self.track = TrackEndpoint(self.registry, self.limiter, self.queue, settings.max_body_bytes)
        self._openapi = encode(openapi_document())
        self.started = False

    async def startup(self) -> None:
        await self.store.open()
        await self.queue.open()
        await self.limiter.open()
        await self.registry.start()
        self.started = True

    async def shutdown(self) -> None:
        self.started = False
        await self.registry.stop()
        await self.queue.aclose()
        await self.limiter.aclose()
        await self.store.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._route(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(EVENT_PREFIX) and "/" not in path[len(EVENT_PREFIX) :]:
            if method == "POST":
                await self.track(scope, receive, send, path[len(EVENT_PREFIX) :])
            else:
                await _error(send, contract.method_not_allowed(), [(b"allow", b"POST")])
        elif method not in ("GET", "HEAD"):
            await _error(send, contract.method_not_allowed() if path in _GETS else _nf())
        elif path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            ready = self.started and await self.queue.ready()
            body = b'{"status":"ready"}' if ready else b'{"status":"not ready"}'
            await send_json(send, 200 if ready else 503, body)
        elif path == "/openapi.json":
            await send_json(send, 200, self._openapi)
        else:
            await _error(send, _nf())

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
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


_GETS = {"/healthz", "/readyz", "/openapi.json"}


def _nf() -> ContractError:
    return contract.not_found_route()


async def _error(send: Send, exc: ContractError, headers: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    request_id = new_request_id()
    body = encode(contract.error_body(exc, request_id))
    await send_json(send, exc.status, body, [*headers, (b"x-request-id", request_id.encode())])


def create_app(settings: Settings) -> TrackdApp:
    return TrackdApp(settings)


def from_environment() -> TrackdApp:
    """The factory each `--workers` process calls: the CLI hands settings down by env var."""
    return TrackdApp(Settings.from_json(os.environ[SETTINGS_ENV]))
