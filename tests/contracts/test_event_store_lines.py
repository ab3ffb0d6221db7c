"""The EventStore contract for `event_lines` (trackd/store/base.py), run against every adapter:
memory, sqlite, postgres. Each page must be, byte for byte, what encoding the read API's view of
the same events gives (``encode_lines`` of a page of `events`, the NDJSON export before
`event_lines`), and `trackd events export --format ndjson` writes exactly those bytes.

The events cover what the lines pass through without decoding (the attributes: unicode,
escapes, nested objects and arrays, floats and 64-bit integers at their edges) and what they
rebuild (times from the epoch to year 9999, `customer_id`), and the events of a merged user
and of a user marked for delete."""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pytest

from trackd.cli.export import export
from trackd.errors import ConfigError
from trackd.models import Action, Envelope, Kind, MergePair, Plan, UserDelete
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store.base import EventQuery, EventStore

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
RECEIVED = T + 60_123  # 2023-11-14T22:14:20.123Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
LEAP = 1_709_251_199_999  # 2024-02-29T23:59:59.999Z
_encode_lines = msgspec.json.Encoder().encode_lines


#: Attribute documents the lines copy as stored: each must come out as decoding and encoding
#: it again gives.
ATTRIBUTES: list[dict[str, Any]] = [
    {},
    {"name": "Zoë 東京 🚀", "combining": "e\u0301", "rtl": "שלום", "bom": "\ufeff"},
    {"quote": 'say "hi"', "backslash": "C:\\path\\", "controls": "\t\n\r\x01\x1f\x7f"},
    {"separators": "\u2028\u2029", "slash": "</script>", "nul": "a\x00b"},
    {"cart": {"items": [{"sku": "A1", "qty": 2, "tags": ["x", {"deep": [[], {}]}]}]}},
    {"floats": [0.1, -0.0, 1e300, 5e-324, 1.5, -2.25e-10, 123456789.123]},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1]},
    {"mixed": [True, False, None, "", 0, 0.0, [], {}]},
    {"key with spaces": 1, "ключ": 2, "": 3, "user_time": "not a time", "customer_id": "x"},
]

#: (user_time, current_time) pairs from the epoch to the last millisecond of year 9999.
TIMES = [(0, 1), (999, 86_399_999), (T + 123, T), (LEAP, LEAP - 86_400_000), (MAX_MS, MAX_MS)]


def act(index: int, name: str, current: int, user: int, **fields: Any) -> Action:
    values: dict[str, Any] = {
        "index": index, "action": name, "attributes": ATTRIBUTES[index % len(ATTRIBUTES)],
        "platform": "ANDROID", "platform_raw": "android", "app_version": "1.0 β",
        "current_time": current, "user_time": user,
        "user_timezone_offset": index * 1800 % 54_000 - 27_000,
    }  # fmt: skip
    values.update(fields)
    return Action(**values)


def env(request_id: str, customer_id: str, *actions: Action, **fields: Any) -> Plan:
    values: dict[str, Any] = {
        "request_id": request_id, "workspace_id": "WS1", "received_at": RECEIVED,
        "customer_id": customer_id, "device_id": None, "actions": list(actions),
        "client_ip": "198.51.100.7", "event_count": len(actions),
    }  # fmt: skip
    values.update(fields)
    return plan(Envelope(**values))


def merge(request_id: str, merged: str, retained: str) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED + 1,
            customer_id=None, device_id=None, actions=[], kind=Kind.MERGE,
            merges=[MergePair(merged, retained)], event_count=1,
        )
    )  # fmt: skip


def delete_later(request_id: str, customer_id: str) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED + 2,
            customer_id=customer_id, device_id=None, actions=[], kind=Kind.DELETE,
            delete=UserDelete(
                identity_type="customer_id", identity_value=customer_id, buffer_ms=86_400_000
            ),
        )
    )  # fmt: skip


async def fill(store: EventStore) -> None:
    """Every attribute document, in every time, for five users (ids of every kind of text);
    then `m` merged into `r`, and `gone` marked for delete."""
    users = ["r", "m", "gone", "Zoë 🚀", 'q"\\uote']
    plans = []
    for n in range(len(ATTRIBUTES) * len(TIMES)):
        user, current = TIMES[n % len(TIMES)]
        fields: dict[str, Any] = {}
        if n % 2:
            fields = {"moe_os_type": "ios", "platform_raw": None, "app_version": None}
        plans.append(
            env(
                f"r{n}",
                users[n % len(users)],
                act(n, f"Event {n % 4} ✓", current, user, **fields),
                device_id=f"d{n}" if n % 3 else None,
                project_code="P1" if n % 4 == 1 else None,
            )
        )
    await apply(store, plans)
    await apply(store, [merge("g1", "m", "r"), delete_later("x1", "gone")])


async def view_pages(store: EventStore, query: EventQuery) -> list[bytes]:
    """The NDJSON of `events`' pages of `query`, as the export encoded it before
    `event_lines`: the read API's view of each event, encoded."""
    found = []
    while True:
        events, cursor = await store.events(query)
        if events:
            found.append(_encode_lines(events))
        if cursor is None:
            return found
        query = msgspec.structs.replace(query, before_seq=cursor)


async def line_pages(store: EventStore, query: EventQuery) -> list[bytes]:
    return [page async for page in store.event_lines(query)]


async def test_each_page_is_byte_for_byte_the_encoded_view_of_events(store: EventStore) -> None:
    await fill(store)
    for limit in (1, 7, 45, 1000):
        query = EventQuery(workspace_id="WS1", limit=limit)
        pages = await line_pages(store, query)
        assert pages == await view_pages(store, query), limit
    events = b"".join(pages).splitlines()
    assert len(events) == len(ATTRIBUTES) * len(TIMES) + 2  # and the merge's two events
    assert {msgspec.json.decode(e)["customer_id"] for e in events} == {
        "r", "gone", "Zoë 🚀", 'q"\\uote'
    }  # fmt: skip


async def test_filters_and_cursors_page_as_events_does(store: EventStore) -> None:
    await fill(store)
    _, cursor = await store.events(EventQuery(workspace_id="WS1", limit=10))
    assert cursor is not None
    for filters in (
        {"customer_id": "r"},
        {"customer_id": "m"},  # a merged user's id: the events of the profile it went into
        {"customer_id": "gone"},  # marked for delete: still there until the sweep
        {"action": "Event 2 ✓"},
        {"since": T, "until": MAX_MS},
        {"since": 2, "until": T},
        {"before_seq": cursor},
        {"customer_id": "nobody"},
    ):
        query = EventQuery(workspace_id="WS1", limit=4, **filters)
        assert await line_pages(store, query) == await view_pages(store, query), filters
    assert await line_pages(store, EventQuery(workspace_id="WS2")) == []


async def test_a_line_shows_the_event_as_the_read_api_does(store: EventStore) -> None:
    attributes = {"name": "Zoë 🚀", "cart": {"n": [1, 2.5, None]}, "q": 'a"\\\n'}
    action = Action(
        index=0, action="Bought ✓", attributes=attributes, platform="iOS",
        platform_raw="iphone", app_version="2.0", current_time=LEAP, user_time=MAX_MS,
        user_timezone_offset=-19_800, moe_os_type="ios",
    )  # fmt: skip
    await apply(store, [env("req1", "Zoë", action, device_id="dev", project_code="P1")])
    pages = await line_pages(store, EventQuery(workspace_id="WS1"))
    assert pages == [
        '{"event_id":"req1-0","request_id":"req1","action":"Bought ✓",'
        '"attributes":{"name":"Zoë 🚀","cart":{"n":[1,2.5,null]},"q":"a\\"\\\\\\n"},'
        '"platform":"iOS","platform_raw":"iphone","app_version":"2.0",'
        '"user_time":"9999-12-31T23:59:59.999Z","current_time":"2024-02-29T23:59:59.999Z",'
        '"user_timezone_offset":-19800,"received_at":"2023-11-14T22:14:20.123Z",'
        '"client_ip":"198.51.100.7","device_id":"dev","project_code":"P1",'
        '"moe_os_type":"ios","customer_id":"Zoë"}\n'.encode()
    ]


async def test_a_query_that_is_not_newest_first_is_refused(store: EventStore) -> None:
    for query in (
        EventQuery(workspace_id="WS1", after_seq=0),
        EventQuery(workspace_id="WS1", with_seq=True),
        EventQuery(workspace_id="WS1", limit=0),
    ):
        with pytest.raises(ConfigError):
            await line_pages(store, query)


async def test_the_ndjson_export_writes_the_encoded_view_of_every_event(
    store: EventStore,
) -> None:
    await fill(store)
    out = io.BytesIO()
    seen: list[int] = []
    count = await export(store, "WS1", out, "ndjson", progress=seen.append)
    expected = await view_pages(store, EventQuery(workspace_id="WS1", limit=2000))
    assert out.getvalue() == b"".join(expected)
    assert count == len(ATTRIBUTES) * len(TIMES) + 2
    assert seen == [count]
    ranged = io.BytesIO()
    count = await export(store, "WS1", ranged, "ndjson", since=T, until=MAX_MS)
    expected = await view_pages(store, EventQuery(workspace_id="WS1", since=T, until=MAX_MS))
    assert ranged.getvalue() == b"".join(expected)
    assert count == ranged.getvalue().count(b"\n") > 0
