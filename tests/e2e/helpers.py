"""Plain helpers of the e2e suites (the fixtures are in conftest.py): deadlines, the CLI as a user
types it, the Data API's headers and exact answers, polling, and a workspace of a running server
with its read API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import anyio
import httpx
import pytest

from tests.factories import basic

if TYPE_CHECKING:
    from tests.e2e.server import TrackdProcess

#: Generous: a cold interpreter on a busy 2-core machine, twice over with --workers 2.
START_SECONDS = 60.0
STOP_SECONDS = 30.0
#: How long the processor may take to catch up with what a test sent.
SETTLE_SECONDS = 30.0
SUCCESS_MESSAGE = "Your request has been accepted and will be processed soon."


def cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m trackd ARGS --data-dir DATA_DIR``, as a user types it."""
    result = subprocess.run(
        [sys.executable, "-m", "trackd", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"trackd {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def cli_json(data_dir: Path, *args: str) -> Any:
    return json.loads(cli(data_dir, *args, "--json").stdout)


def auth(workspace_id: str, key: str) -> dict[str, str]:
    return {"Authorization": basic(workspace_id, key), "Content-Type": "application/json"}


def success(response: httpx.Response) -> dict[str, Any]:
    """The exact 200 body trackd owes this response (its request id from the header)."""
    return {
        "status": "success",
        "message": SUCCESS_MESSAGE,
        "request_id": response.headers["x-request-id"],
    }


def failure(response: httpx.Response, type_: str, message: str) -> dict[str, Any]:
    """The exact error body trackd owes this response (its request id from the header)."""
    return {
        "status": "fail",
        "error": {
            "message": message,
            "type": type_,
            "request_id": response.headers["x-request-id"],
        },
    }


async def poll(
    fetch: Callable[[], Awaitable[httpx.Response]],
    done: Callable[[httpx.Response], bool],
    seconds: float = SETTLE_SECONDS,
) -> httpx.Response:
    """The first response `done` accepts, or the last one once `seconds` have passed (which
    the caller's assertion then reports)."""
    deadline = time.monotonic() + seconds
    while True:
        response = await fetch()
        if done(response) or time.monotonic() >= deadline:
            return response
        await anyio.sleep(0.01)


def epoch_ms(text: str) -> int:
    """An ISO 8601 time of the read API as epoch milliseconds (parsed without trackd's code)."""
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


class ServerWorkspace:
    """A workspace of the running server, with its key and its read API; a test module adds
    the calls it makes in a subclass."""

    def __init__(self, client: httpx.AsyncClient, workspace_id: str, key: str) -> None:
        self.client = client
        self.id = workspace_id
        self.key = key

    @classmethod
    async def create(cls, server: TrackdProcess, client: httpx.AsyncClient, *options: str) -> Self:
        """Created with the CLI while the server runs; returned once the server knows it
        (product.md: within a second, without a restart)."""
        created = cli_json(server.data_dir, "workspace", "create", *options)
        workspace = cls(client, created["workspace_id"], created["api_key"])
        response = await poll(lambda: workspace.get("stats"), lambda r: r.status_code == 200)
        assert response.status_code == 200, response.text
        return workspace

    def headers(self, **extra: str) -> dict[str, str]:
        return {**auth(self.id, self.key), **extra}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(
            f"/api/workspaces/{self.id}/{path}",
            params=params,
            headers={"Authorization": basic(self.id, self.key)},
        )
