"""`GET /api/workspaces/{ws}/live` (issue 13 item 2): processed events as Server-Sent Events.

The source is the store, polled every `POLL_SECONDS` after the last position sent, so every
edge streams every event whichever worker processed it. Each event is one message::

    id: <seq>
    event: event
    data: <the event as GET /api/workspaces/{ws}/events shows it, with "seq" and "warnings">

`id` is the event's position in the store: a client that reconnects with ``Last-Event-ID`` (or
``?after=``) gets every event after it, none twice; without either the stream starts at the
newest event. A comment line is sent every `HEARTBEAT_SECONDS` while nothing else is, so proxies
keep the connection. Positions are per workspace in commit order on every store
(`trackd.store.base.Batch.claim`), so a position sent is never followed by a smaller one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import msgspec

from trackd.edge.http import Headers, Receive, Send
from trackd.store.base import FROM_END, EventQuery, EventStore
from trackd.wire.times import parse_time

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
PAGE = 500
RETRY = b"retry: 1000\n\n"
HEARTBEAT = b": heartbeat\n\n"
_encode = msgspec.json.Encoder().encode


class LiveStream:
    """One client's stream: `after` the position to start after (None: the newest)."""

    def __init__(
        self,
        store: EventStore,
        workspace_id: str,
        after: int | None,
        customer_id: str | None = None,
        action: str | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.store = store
        self.workspace_id = workspace_id
        self.after = after
        self.customer_id = customer_id
        self.action = action
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds

    async def __call__(self, receive: Receive, send: Send, headers: Headers) -> None:
        position = self.after
        if position is None:  # checked before the 200, so a failing store is a 503 JSON answer
            _, position = await self.store.events(
                EventQuery(workspace_id=self.workspace_id, after_seq=FROM_END)
            )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                    *headers,
                ],
            }
        )
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch(receive, gone))
        try:
            await self._stream(send, gone, position or 0)
        except OSError:
            pass  # the client went away mid-write
        except Exception:
            log.exception("the live stream of %s failed", self.workspace_id)
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream(self, send: Send, gone: asyncio.Event, position: int) -> None:
        await _chunk(send, RETRY)
        quiet_since = time.monotonic()
        while not gone.is_set():
            events, last = await self.store.events(
                EventQuery(
                    workspace_id=self.workspace_id,
                    customer_id=self.customer_id,
                    action=self.action,
                    after_seq=position,
                    limit=PAGE,
                    with_seq=True,
                )
            )
            if events:
                await _chunk(send, await self._messages(events))
                position = last if last is not None else position
                quiet_since = time.monotonic()
                if len(events) == PAGE:
                    continue  # more are waiting: no pause
            elif time.monotonic() - quiet_since >= self.heartbeat_seconds:
                await _chunk(send, HEARTBEAT)
                quiet_since = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), self.poll_seconds)

    async def _messages(self, events: list[dict[str, Any]]) -> bytes:
        received = [parse_time(e["received_at"]) or 0 for e in events]
        warnings = await self.store.request_warnings(
            self.workspace_id,
            [str(e["request_id"]) for e in events],
            min(received),
            max(received),
        )
        return b"".join(
            b"id: %d\nevent: event\ndata: %s\n\n"
            % (e["seq"], _encode({**e, "warnings": warnings.get(str(e["request_id"]), [])}))
            for e in events
        )


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    """Sets `gone` when the client disconnects (or the server closes the connection)."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        gone.set()
