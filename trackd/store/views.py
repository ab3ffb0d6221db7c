"""What the read API shows of stored rows, shared by the event store adapters.

Each adapter runs its own SQL and hands the rows here, in the column order each function names,
so SQLite and PostgreSQL answer with the same shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import msgspec

from trackd.errors import ConfigError
from trackd.models import EventRecord
from trackd.store.base import EventQuery
from trackd.wire.times import iso

_decode_event = msgspec.json.Decoder(EventRecord).decode
_decode = msgspec.json.decode


def event_view(event: EventRecord, customer_id: str) -> dict[str, Any]:
    """An event as the read API shows it: times as ISO 8601 UTC."""
    view = msgspec.structs.asdict(event)
    view["customer_id"] = customer_id
    for name in ("user_time", "current_time", "received_at"):
        view[name] = iso(view[name])
    return view


def event_page(
    rows: Sequence[Sequence[Any]], q: EventQuery
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of events and the cursor to the next one, from up to `q.limit + 1` rows of
    (seq, customer_id, doc) in the page's order: the extra row says whether more are older."""
    page = rows[: q.limit]
    if q.after_seq is not None:
        cursor = page[-1][0] if page else None
    else:
        cursor = page[-1][0] if len(rows) > q.limit else None
    if q.with_seq:  # the live stream (issue 13)
        return [
            {**event_view(_decode_event(doc), customer_id), "seq": seq}
            for seq, customer_id, doc in page
        ], cursor
    return [event_view(_decode_event(doc), customer_id) for _, customer_id, doc in page], cursor


# -- NDJSON lines (`EventStore.event_lines`): the bytes `event_page`'s events encode to, built
# without decoding the attributes. Most of an export's time went to decoding each stored
# document, building its view dict and encoding it again (BENCHMARKS.md, "Reads at scale").

#: A stored event as one NDJSON line shows it: `EventRecord`'s fields in its order (the order
#: `event_view` keeps), then `customer_id`, which `event_view` adds last. The attributes are
#: the stored JSON text as it is (`msgspec.Raw`: encoding copies the bytes; the stored text is
#: msgspec's own encoding, which is what decoding and encoding it again gives); the three times
#: are decoded as epoch ms, then replaced by their `iso()` text. Made from `EventRecord`, so a
#: field added there is exported too; tests/contracts/test_event_store_lines.py holds the lines
#: to `event_view`'s, byte for byte.
_TIMES = ("user_time", "current_time", "received_at")
_Line = msgspec.defstruct(
    "_Line",
    [
        (
            f.name,
            msgspec.Raw if f.name == "attributes" else int | str if f.name in _TIMES else f.type,
            f.default,
        )
        for f in msgspec.structs.fields(EventRecord)
    ]
    + [("customer_id", str, "")],
    gc=False,  # no cycles: a page's lines are freed without the collector
)
_decode_line = msgspec.json.Decoder(_Line).decode
_encode_lines = msgspec.json.Encoder().encode_lines


def event_lines(rows: Sequence[Sequence[Any]], q: EventQuery) -> bytes:
    """The events of `event_page` as NDJSON: the bytes ``encode_lines`` makes of them (each
    line ends in "\\n"), byte for byte; `q.with_seq` is not shown."""
    lines = []
    times: dict[int, str] = {}  # a request's events share their times: each formatted once
    seen = times.get
    for _, customer_id, doc in rows[: q.limit]:
        line: Any = _decode_line(doc)
        t = line.user_time
        line.user_time = seen(t) or times.setdefault(t, iso(t))
        t = line.current_time
        line.current_time = seen(t) or times.setdefault(t, iso(t))
        t = line.received_at
        line.received_at = seen(t) or times.setdefault(t, iso(t))
        line.customer_id = customer_id
        lines.append(line)
    return _encode_lines(lines)


async def line_pages(
    read: Callable[[EventQuery], Awaitable[Sequence[Sequence[Any]]]], q: EventQuery
) -> AsyncIterator[bytes]:
    """`EventStore.event_lines` from `read`, the adapter's up to `q.limit + 1` rows of (seq,
    customer_id, doc) for a query, newest first (`event_page`'s rows). The next page's rows are
    asked for before this page's lines are made: PostgreSQL's server (SQLite's thread, as far as
    the GIL lets it) reads them meanwhile. Empty pages are not yielded."""
    if q.after_seq is not None or q.with_seq or q.limit < 1:
        raise ConfigError("event lines page newest first, by at least one event")

    def next_rows(cursor: int | None) -> asyncio.Future[Sequence[Sequence[Any]]]:
        return asyncio.ensure_future(read(msgspec.structs.replace(q, before_seq=cursor)))

    pending = next_rows(q.before_seq)
    try:
        while True:
            rows = await pending
            more = len(rows) > q.limit
            if more:
                pending = next_rows(rows[q.limit - 1][0])
            if rows:
                yield event_lines(rows, q)
            if not more:
                return
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def user_view(
    customer_id: str,
    row: Sequence[Any],
    devices: Iterable[Sequence[Any]],
    aliases: Sequence[str] = (),
) -> dict[str, Any]:
    """A user with its devices, from its `users` row (attributes, identifiers, first_seen,
    last_seen, event_count, moengage_id) and its `devices` rows (device_id, platform, app_version,
    first_seen, last_seen, last_ip, attributes) in the order shown, each device with the
    attributes Track Device kept (push_id, model, …) beside its columns; `aliases` (the
    customer ids merged into it, sorted) only when it has any."""
    view = _user_view(customer_id, row, devices)
    if aliases:
        view["aliases"] = list(aliases)
    return view


def _user_view(
    customer_id: str, row: Sequence[Any], devices: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    attributes, identifiers, first_seen, last_seen, event_count, moengage_id = row
    return {
        "customer_id": customer_id,
        "moengage_id": moengage_id,
        "attributes": _decode(attributes),
        "identifiers": _decode(identifiers),
        "first_seen": iso(first_seen),
        "last_seen": iso(last_seen),
        "event_count": event_count,
        "devices": [_device_view(*device) for device in devices],
    }


def _device_view(
    device_id: str,
    platform: str | None,
    app_version: str | None,
    first_seen: int,
    last_seen: int,
    last_ip: str | None,
    attributes: Any,
) -> dict[str, Any]:
    """A device: its columns, then Track Device's attributes (data-api.md §1)."""
    view: dict[str, Any] = {
        "device_id": device_id,
        "platform": platform,
        "app_version": app_version,
        "first_seen": iso(first_seen),
        "last_seen": iso(last_seen),
        "last_ip": last_ip,
    }
    kept = _decode(attributes) if isinstance(attributes, str | bytes) else attributes
    view.update({k: v for k, v in (kept or {}).items() if k not in view})
    return view


def schema_view(
    events: Iterable[Sequence[Any]], attributes: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    """The schema catalogue, from `schema_events` rows (action, count, first_seen, last_seen)
    and `schema_attributes` rows (action, attribute, type, count) in the order shown."""
    found: dict[str, dict[str, Any]] = {}
    for action, count, first, last in events:
        found[action] = {
            "action": action,
            "count": count,
            "first_seen": iso(first),
            "last_seen": iso(last),
            "attributes": {},
        }
    for action, attribute, type_, count in attributes:
        if action in found:
            found[action]["attributes"].setdefault(attribute, {})[type_] = count
    return {"events": list(found.values())}


def warnings_by_request(rows: Iterable[Sequence[Any]]) -> dict[str, list[dict[str, Any]]]:
    """Warnings of requests, from issue rows of (request_id, action_index, attribute, reason)
    (the live stream, issue 13), shaped as a 200's `warnings`."""
    found: dict[str, list[dict[str, Any]]] = {}
    for request_id, index, attribute, reason in rows:
        warning: dict[str, Any] = {"index": index, "reason": reason}
        if attribute is not None:
            warning["attribute"] = attribute
        found.setdefault(request_id, []).append(warning)
    return found


def issue_views(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Issues, from rows of (request_id, action_index, attribute, reason, at)."""
    return [
        {"request_id": r, "index": i, "attribute": a, "reason": why, "at": iso(at)}
        for r, i, a, why, at in rows
    ]


# -- GDPR erasure (data-api.md §6): what both adapters look up, store and show --

#: The profile attribute each erasure identity type names (REF §6.6; `moe_gaid` is the
#: attribute MoEngage keeps the Google advertising id in).
ERASURE_ATTRIBUTES = {
    "user_secondary_id": "user_secondary_id",
    "email": "email",
    "mobile": "mobile",
    "google_advertising_id": "moe_gaid",
    "advertising_identifier": "advertising_identifier",
}

#: The keys of an erasure's audit record (`Batch.record_erasure`), in the columns' order.
ERASURE_COLUMNS = (
    "workspace", "request_id", "submitted_time", "received_at", "applied_at", "identity_types",
    "users", "events",
)  # fmt: skip


def erasure_view(row: tuple[object, ...]) -> dict[str, object]:
    request_id, submitted, received, applied, types, users, events = row
    return {
        "request_id": request_id,
        "submitted_time": submitted,
        "received_at": received,
        "applied_at": applied,
        "identity_types": str(types).split(",") if types else [],
        "users": users,
        "events": events,
    }
