"""The little of HTTP the edge needs, on raw ASGI: reading a bounded body, sending JSON."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
encode = msgspec.json.Encoder().encode


class ClientDisconnected(Exception):
    """The client went away before its body arrived; nothing is answered or kept."""


def header_map(scope: Scope) -> dict[bytes, bytes]:
    """Request headers by lower-case name; the first of repeated headers wins."""
    return first_headers(scope["headers"])


def first_headers(header_list: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Headers as received (names in lower case) by name; the first of repeated ones wins."""
    headers: dict[bytes, bytes] = {}
    for name, value in header_list:
        headers.setdefault(name, value)
    return headers


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, body: bytes, headers: Headers = ()) -> None:  # type: ignore[assignment]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def client_ip(headers: dict[bytes, bytes], peer: str | None) -> str | None:
    """The first valid address of X-Forwarded-For, else the peer; a malformed value is ignored."""
    forwarded = headers.get(b"x-forwarded-for")
    if forwarded:
        for part in forwarded.decode("latin-1").split(","):
            try:
                return str(ipaddress.ip_address(part.strip()))
            except ValueError:
                continue
    return peer
