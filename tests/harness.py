"""The app in process on the in-memory adapters, and a client speaking ASGI to it.

`started(tmp_path)` builds and starts it with one workspace (WS1) and shuts it down after; the
`harness` fixture of tests/conftest.py is that, for one test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.factories import basic
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.limiter.memory import MemoryLimiter
from trackd.queue.base import Queue
from trackd.queue.memory import MemoryQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store, open_request_log
from trackd.store.memory import MemoryWorkspaceStore


class Harness:
    """The app with memory adapters, a client speaking ASGI to it, and one workspace."""

    def __init__(self, app: TrackdApp, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.store: MemoryWorkspaceStore = app.store  # type: ignore[assignment]
        self.queue: MemoryQueue = app.queue  # type: ignore[assignment]
        self.workspace_id = ""
        self.key = ""

    async def create_workspace(self, **options: Any) -> tuple[str, str]:
        workspace, key = await admin.create_workspace(self.store, **options)
        await self.app.registry.reload()
        return workspace.id, key

    def headers(self, workspace_id: str | None = None, key: str | None = None) -> dict[str, str]:
        return {
            "Authorization": basic(workspace_id or self.workspace_id, key or self.key),
            "Content-Type": "application/json",
        }

    async def post(
        self,
        body: Any = None,
        *,
        workspace_id: str | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        path_id = workspace_id or self.workspace_id
        return await self.client.post(
            f"/v1/event/{path_id}",
            json=body if content is None else None,
            content=content,
            headers=self.headers() if headers is None else headers,
            params=params,
        )

    async def queued(self) -> list[Any]:
        """Every envelope ever queued: the `inspect` consumer never acknowledges, and is
        registered before any request, so the processor's acks never reclaim what it has not
        read; `nack` rewinds it for the next look."""
        deliveries = await self.queue.get("inspect", 1_000_000, 0)
        await self.queue.nack("inspect")
        return [d.envelope for d in deliveries]


@contextlib.asynccontextmanager
async def started(tmp_path: Path, queue: Queue | None = None) -> AsyncIterator[Harness]:
    """The harness, its app started on `tmp_path` with workspace WS1 (on the memory queue, or
    on `queue`); shut down on leaving."""
    settings = Settings(
        registry_refresh_seconds=0.05, data_dir=str(tmp_path), admin_token="tok", processor="inline"
    )
    app = TrackdApp(
        Services(
            settings,
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=queue or MemoryQueue(),
            limiter=MemoryLimiter(),
            request_log=open_request_log("memory://"),
        )
    )
    await app.startup()
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
        h = Harness(app, client)
        await h.queued()  # registers the `inspect` consumer before anything is queued
        h.workspace_id, h.key = await h.create_workspace(workspace_id="WS1", name="Test")
        yield h
    await app.shutdown()
