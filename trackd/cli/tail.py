"""`trackd tail`: a workspace's events as they are processed, read from a server's live stream
(`GET /api/workspaces/{ws}/live`, Server-Sent Events). Human lines by default, NDJSON with
``--json``. When the connection drops it reconnects with ``Last-Event-ID``: nothing is missed,
nothing shown twice."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from rich.console import Console
from rich.text import Text

RECONNECT_SECONDS = 1.0
_encode = msgspec.json.Encoder().encode


async def messages(
    client: httpx.AsyncClient, url: str, last_id: str | None
) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
    """(id, event) of each `event` message of one connection."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            raise TailError(f"{response.status_code} {response.text}")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                if not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value[1:] if value.startswith(" ") else value
                continue
            if fields.get("event", "message") == "event" and "data" in fields:
                yield fields.get("id"), msgspec.json.decode(fields["data"])
            fields = {}


class TailError(Exception):
    """The server refused the stream (a wrong key, an unknown workspace): not retried."""


def human(event: dict[str, Any]) -> Text:
    """One line: time, user, event name, attributes, warnings (all as text, never markup)."""
    line = Text()
    line.append(str(event.get("current_time", ""))[11:23], style="dim")
    line.append("  ")
    line.append(str(event.get("customer_id")), style="cyan")
    line.append("  ")
    line.append(str(event.get("action")), style="bold")
    line.append("  ")
    line.append(_encode(event.get("attributes", {})).decode())
    warnings = event.get("warnings") or []
    if warnings:
        shown = ", ".join(
            f"{w.get('reason')}({w['attribute']})" if "attribute" in w else str(w.get("reason"))
            for w in warnings
        )
        line.append(f"  ! {shown}", style="yellow")
    return line


async def tail(
    base_url: str,
    workspace_id: str,
    auth: httpx.Auth,
    *,
    as_json: bool,
    params: dict[str, str],
    stop: asyncio.Event,
    out: Console | None = None,
) -> int:
    out = out or Console(file=sys.stdout, highlight=False, markup=False, soft_wrap=True)
    emit: Callable[[dict[str, Any]], None]
    if as_json:

        def emit(event: dict[str, Any]) -> None:
            sys.stdout.buffer.write(_encode(event) + b"\n")
            sys.stdout.flush()

    else:

        def emit(event: dict[str, Any]) -> None:
            out.print(human(event))

    url = f"/api/workspaces/{quote(workspace_id, safe='')}/live"
    last_id: str | None = None
    timeout = httpx.Timeout(10, read=None)
    async with httpx.AsyncClient(base_url=base_url, auth=auth, params=params, timeout=timeout) as c:
        while not stop.is_set():
            reading = asyncio.create_task(_follow(c, url, last_id, emit))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                return 0
            try:
                last_id = reading.result() or last_id
            except TailError as exc:
                print(f"trackd: {exc}", file=sys.stderr)
                return 1
            except httpx.TransportError:
                pass  # the server went away: try again, from where it stopped
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)
    return 0


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    last_id: str | None,
    emit: Callable[[dict[str, Any]], None],
) -> str | None:
    try:
        async for message_id, event in messages(client, url, last_id):
            emit(event)
            last_id = message_id or last_id
    except httpx.TransportError:
        if last_id is None:
            raise
    return last_id
