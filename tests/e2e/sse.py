"""A Server-Sent Events reader for the live stream's tests (as a browser's EventSource parses
the stream: fields until a blank line; comment lines start with a colon)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import msgspec


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def messages(self, count: int, seconds: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` messages: {"id", "event", "data" (decoded JSON)}, within `seconds`."""
        found: list[dict[str, Any]] = []
        fields: dict[str, str] = {}
        with anyio.fail_after(seconds):
            while len(found) < count:
                line = await anext(self.lines)
                if line == "":
                    if "data" in fields:
                        found.append(
                            {
                                "id": fields.get("id"),
                                "event": fields.get("event"),
                                "data": msgspec.json.decode(fields["data"]),
                            }
                        )
                    fields = {}
                elif line.startswith(":"):
                    self.comments.append(line)
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
        return found


@asynccontextmanager
async def live(
    client: httpx.AsyncClient, workspace_id: str, headers: dict[str, str], **params: str
) -> AsyncIterator[Stream]:
    """`GET /api/workspaces/{ws}/live`, open until the block ends."""
    async with client.stream(
        "GET",
        f"/api/workspaces/{workspace_id}/live",
        params=params,
        headers=headers,
        timeout=httpx.Timeout(30, read=None),
    ) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        yield Stream(response)
