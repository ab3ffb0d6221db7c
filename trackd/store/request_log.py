"""What the read API shows of a request log entry (issue 13 item 1; the `RequestLog` protocol is
in `trackd.store.base`), shared by the SQLite and PostgreSQL adapters (`sqlite_requests`,
`postgres_requests`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from trackd.models import RequestEntry
from trackd.wire.times import iso

#: How long an erasure's marks stay beside the request log, in ms (migration 0009 of SQLite,
#: 0008 of PostgreSQL): an edge flushes what it recorded every half second, so an entry it
#: recorded before the erasure reaches the log well within this.
ERASED_KEPT_MS = 10 * 60_000

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


def erased_mark(customer_id: str) -> bytes:
    """What the request log keeps of an erased customer id for `ERASED_KEPT_MS`: its SHA-256,
    never the id. U+0000 counts as U+FFFD, as PostgreSQL stores it."""
    text = customer_id.replace("\x00", "\ufffd")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def entry_marks(entries: list[RequestEntry]) -> list[bytes]:
    """The distinct marks an adapter looks up before it appends these entries."""
    return sorted({erased_mark(e.customer_id) for e in entries if e.customer_id is not None})


def unerased(
    entries: list[RequestEntry], marks: dict[tuple[str, bytes], int]
) -> list[RequestEntry]:
    """The entries no erasure covers, from the marks ``(workspace, erased_mark) -> erased_at``:
    an erasure covers its user's entries recorded at or before it (an edge's buffer still held
    them), never a later request."""
    if not marks:
        return entries
    return [
        e
        for e in entries
        if e.customer_id is None
        or marks.get((e.workspace_id, erased_mark(e.customer_id)), -1) < e.at
    ]
