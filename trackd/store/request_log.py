"""What the read API shows of a request log entry (issue 13 item 1; the `RequestLog` protocol is
in `trackd.store.base`), shared by the SQLite and PostgreSQL adapters (`sqlite_requests`,
`postgres_requests`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from trackd.models import RequestEntry
from trackd.wire.times import iso

_decode_entry = msgspec.json.Decoder(RequestEntry).decode
_encode = msgspec.json.Encoder().encode


def entry_doc(entry: RequestEntry) -> bytes:
    """What an adapter stores as an entry's `doc`: the entry without its body (stored apart, as
    bytes)."""
    if entry.body is None:
        return _encode(entry)
    return _encode(msgspec.structs.replace(entry, body=None))


def request_view(seq: int, doc: bytes | str, body: bytes | None) -> dict[str, Any]:
    """An entry as the read API shows it, from its stored (seq, doc, body)."""
    entry = _decode_entry(doc)
    error = entry.error
    return {
        "seq": seq,
        "at": iso(entry.at),
        "endpoint": entry.endpoint,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "request_id": entry.request_id,
        "client_ip": entry.client_ip,
        "user_agent": entry.user_agent,
        "event_count": entry.event_count,
        "customer_id": entry.customer_id,
        "warnings": [msgspec.to_builtins(w) for w in entry.warnings],
        "error": None if error is None else msgspec.to_builtins(error),
        "body": None if body is None else bytes(body).decode("utf-8", "replace"),
        "body_truncated": entry.body_truncated,
        "headers": entry.headers,
    }


def request_page(
    rows: Sequence[Sequence[Any]], limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """A page from up to `limit + 1` rows of (seq, doc, body), newest first."""
    page = rows[:limit]
    cursor = page[-1][0] if len(rows) > limit else None
    return [request_view(seq, doc, body) for seq, doc, body in page], cursor
