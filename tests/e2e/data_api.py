"""Both backends for the Data API's end-to-end tests (Track Device, Bulk Import): the embedded
one (`trackd serve` on SQLite) and scale-out (a `trackd serve` edge and a `trackd worker` on the
real NATS JetStream, PostgreSQL and Redis, as tests/scaleout/ runs them). A test gets a
`Backend`: a base URL and a fresh workspace's credentials, and reads through the read API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contracts import postgres_db
from tests.e2e.helpers import cli_json, poll
from tests.e2e.server import Launcher
from tests.scaleout.deployment import Deployment
from tests.services import nats_available, needs_service, redis_available


@dataclass
class Backend:
    name: str
    url: str
    new_workspace: Callable[[], tuple[str, str]]  # (workspace id, key)


@dataclass
class Workspace:
    client: httpx.AsyncClient
    id: str
    key: str

    async def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        return await self.client.post(path, json=body, params=params, auth=(self.id, self.key))

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            f"/api/workspaces/{self.id}/{path}", params=params, auth=(self.id, self.key)
        )

    async def until(self, path: str, done: Callable[[Any], bool], **params: Any) -> Any:
        """The read API's answer at `path` once `done` accepts it (asserted)."""
        response = await poll(
            lambda: self.get(path, **params),
            lambda r: r.status_code == 200 and done(r.json()),
            seconds=30,
        )
        assert response.status_code == 200, response.text
        found = response.json()
        assert done(found), found
        return found


async def workspace(backend: Backend, client: httpx.AsyncClient) -> Workspace:
    ws_id, key = backend.new_workspace()
    ws = Workspace(client, ws_id, key)
    response = await poll(lambda: ws.get("stats"), lambda r: r.status_code == 200)
    assert response.status_code == 200, response.text
    return ws


def _sqlite(base: Path) -> Iterator[Backend]:
    launcher = Launcher(base)
    try:
        server = launcher.start()

        def new() -> tuple[str, str]:
            created = cli_json(server.data_dir, "workspace", "create")
            return created["workspace_id"], created["api_key"]

        yield Backend("sqlite", server.url, new)
    finally:
        launcher.close()


def _scale_out(base: Path) -> Iterator[Backend]:
    d = Deployment(base)
    try:
        d.cli("migrate")
        edge = d.edge()
        d.worker()

        def new() -> tuple[str, str]:
            ws_id = f"E2E{uuid.uuid4().hex[:12].upper()}"
            created = json.loads(d.cli("workspace", "create", "--id", ws_id, "--json"))
            return ws_id, created["api_key"]

        yield Backend("scale-out", edge.url, new)
    finally:
        d.close()
        d.delete_stream()


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "scale-out",
        id="scale-out",
        marks=[
            needs_service("postgresql", postgres_db.available),
            needs_service("nats", nats_available),
            needs_service("redis", redis_available),
        ],
    ),
]


def backend_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """The body of a module-scoped fixture parametrized by `BACKENDS`."""
    base = tmp_path_factory.mktemp(f"data-api-{request.param}")
    yield from (_sqlite(base) if request.param == "sqlite" else _scale_out(base))
