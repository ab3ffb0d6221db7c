"""Shared fixtures: an in-process app on the in-memory adapters, and helpers to call it."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.limiter.memory import MemoryLimiter
from trackd.queue.memory import MemoryQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

IN_CI = bool(os.environ.get("CI"))

#: The request of the user's source document (the seed), byte for byte in spirit.
SEED_BODY: dict[str, Any] = {
    "type": "event",
    "customer_id": "123",
    "actions": [
        {
            "action": "ProductAdded",
            "attributes": {"product": "Accessories", "color": "Black", "Brand": "Adidas"},
            "platform": "Android",
            "app_version": "1.2.3",
            "user_time": "1708939453396",
            "current_time": "1708939453396",
        }
    ],
}


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    settings = Settings(
        registry_refresh_seconds=0.05, data_dir=str(tmp_path), admin_token="tok", processor="inline"
    )
    app = TrackdApp(
        Services(
            settings,
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=MemoryQueue(),
            limiter=MemoryLimiter(),
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


def needs_service(name: str, available: Callable[[], bool]) -> pytest.MarkDecorator:
    """Skip when a service is absent locally; under CI its absence is a failure."""
    missing = not IN_CI and not available()
    return pytest.mark.skipif(missing, reason=f"{name} is not running here")
