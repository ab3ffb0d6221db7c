"""The EventStore contract (trackd/store/base.py), run against every adapter.

Plans are built the way the processor builds them, with `trackd.processor.plan.plan` from an
`Envelope` as the edge queues it. Times are chosen around T = 2023-11-14T22:13:20.000Z so
every expected time can be written out as text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.contracts import postgres_db
from tests.factories import MOENGAGE_ID, without_moengage_id
from tests.services import needs_service
from trackd.errors import StoreError
from trackd.models import Action, Envelope, Kind, Plan, Warning
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.processor.rollup import rollup
from trackd.store import open_event_store
from trackd.store.base import FROM_END, EventQuery, EventStore
from trackd.store.records import Changes

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
RECEIVED = T + 60_000  # 2023-11-14T22:14:20.000Z

EventStoreFactory = Callable[[Path], EventStore]

#: One entry per adapter; PostgreSQL joins with ``marks=needs_service(...)``.
EVENT_STORES = [
    pytest.param(lambda tmp_path: open_event_store("memory://"), id="memory"),
    pytest.param(lambda tmp_path: open_event_store(f"sqlite:///{tmp_path}/events.db"), id="sqlite"),
    pytest.param(
        lambda tmp_path: open_event_store(postgres_db.store_url()),
        id="postgres",
        marks=needs_service("postgresql", postgres_db.available),
    ),
]


@pytest.fixture(params=EVENT_STORES)
def make_store(request: pytest.FixtureRequest) -> EventStoreFactory:
    factory: EventStoreFactory = request.param
    return factory


@pytest.fixture
async def store(make_store: EventStoreFactory, tmp_path: Path) -> AsyncIterator[EventStore]:
    s = make_store(tmp_path)
    await s.open()
    yield s
    await s.aclose()


def act(index: int, name: str, at: int, **fields: Any) -> Action:
    """One validated action at `at` (epoch ms); `fields` override the rest."""
    values: dict[str, Any] = {
        "index": index,
        "action": name,
        "attributes": {},
        "platform": "ANDROID",
        "app_version": "1.0",
        "current_time": at,
        "user_time": at,
        "user_timezone_offset": 0,
    }
    values.update(fields)
    return Action(**values)


def env(request_id: str, *actions: Action, **fields: Any) -> Envelope:
    """An envelope of workspace WS1 for customer 123, as the edge would queue it."""
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": RECEIVED,
        "customer_id": "123",
        "device_id": None,
        "actions": list(actions),
        "client_ip": "198.51.100.7",
        "event_count": len(actions),
    }
    values.update(fields)
    return Envelope(**values)


def plans(*envelopes: Envelope) -> list[Plan]:
    return [plan(e) for e in envelopes]


def user_plan(request_id: str, customer_id: str, attributes: dict[str, Any], **fields: Any) -> Plan:
    """A Track User plan (kind "customer")."""
    return plan(
        env(
            request_id,
            customer_id=customer_id,
            kind="customer",
            user_attributes=attributes,
            **fields,
        )
    )


async def all_events(store: EventStore, workspace_id: str = "WS1") -> list[dict[str, Any]]:
    events, cursor = await store.events(EventQuery(workspace_id=workspace_id, limit=1000))
    assert cursor is None
    return events


async def event_ids(store: EventStore, **filters: Any) -> list[str]:
    events, _ = await store.events(EventQuery(workspace_id="WS1", limit=1000, **filters))
    return [e["event_id"] for e in events]


async def snapshot(store: EventStore) -> dict[str, Any]:
    """Everything the read API shows for WS1 and customer 123."""
    return {
        "user": await store.user("WS1", "123"),
        "events": await all_events(store),
        "schema": await store.schema("WS1"),
        "issues": await store.issues("WS1", None),
        "counts": await store.counts("WS1"),
    }


# -- users and devices ------------------------------------------------------------------------


async def test_every_profile_gets_a_stable_moengage_id_of_its_own(store: EventStore) -> None:
    await apply(
        store,
        plans(env("r1", act(0, "Opened", T)), env("r2", act(0, "Opened", T), customer_id="456")),
    )
    first = await store.user("WS1", "123")
    other = await store.user("WS1", "456")
    assert first is not None and other is not None
    assert MOENGAGE_ID.fullmatch(first["moengage_id"]), first["moengage_id"]
    assert first["moengage_id"] != other["moengage_id"]
    # more events, a Track User update and a redelivery keep it
    await apply(store, plans(env("r3", act(0, "Opened", T + 1))))
    await apply(store, plans(env("r4", kind=Kind.CUSTOMER, user_attributes={"plan": "pro"})))
    await apply(store, plans(env("r1", act(0, "Opened", T))))
    again = await store.user("WS1", "123")
    assert again is not None
    assert (again["moengage_id"], again["event_count"]) == (first["moengage_id"], 2)


async def test_profile_spans_the_current_times_of_its_events_and_counts_them(
    store: EventStore,
) -> None:
    await apply(
        store,
        plans(
            env("r1", act(0, "Opened", T + 3_000), act(1, "Viewed", T + 1_000)),
            env("r2", act(0, "Viewed", T + 2_000)),
        ),
    )
    user = await store.user("WS1", "123")
    assert without_moengage_id(user) == {
        "customer_id": "123",
        "attributes": {},
        "identifiers": {},
        "first_seen": "2023-11-14T22:13:21.000Z",
        "last_seen": "2023-11-14T22:13:23.000Z",
        "event_count": 3,
        "devices": [
            {
                "device_id": "123",
                "platform": "ANDROID",
                "app_version": "1.0",
                "first_seen": "2023-11-14T22:13:21.000Z",
                "last_seen": "2023-11-14T22:13:23.000Z",
                "last_ip": "198.51.100.7",
            }
        ],
    }


async def test_device_keeps_platform_version_and_ip_of_its_latest_event(
    store: EventStore,
) -> None:
    newest = env("r1", act(0, "Opened", T + 5_000, platform="iOS", app_version="2.0"))
    older = env(
        "r2",
        act(0, "Opened", T + 1_000, platform="web", app_version="1.0"),
        client_ip="203.0.113.9",
    )
    other_device = env(
        "r3", act(0, "Opened", T + 7, platform="TV", app_version=None), device_id="tv-1"
    )
    await apply(store, plans(newest))
    await apply(store, plans(older, other_device))
    user = await store.user("WS1", "123")
    assert user is not None
    assert user["devices"] == [
        {
            "device_id": "123",
            "platform": "iOS",
            "app_version": "2.0",
            "first_seen": "2023-11-14T22:13:21.000Z",
            "last_seen": "2023-11-14T22:13:25.000Z",
            "last_ip": "198.51.100.7",
        },
        {
            "device_id": "tv-1",
            "platform": "TV",
            "app_version": None,
            "first_seen": "2023-11-14T22:13:20.007Z",
            "last_seen": "2023-11-14T22:13:20.007Z",
            "last_ip": "198.51.100.7",
        },
    ]
    assert (user["first_seen"], user["last_seen"], user["event_count"]) == (
        "2023-11-14T22:13:20.007Z",
        "2023-11-14T22:13:25.000Z",
        3,
    )


async def test_unknown_user_is_none(store: EventStore) -> None:
    await apply(store, plans(env("r1", act(0, "Opened", T))))
    assert await store.user("WS1", "nobody") is None
    assert await store.user("WS2", "123") is None


# -- events -----------------------------------------------------------------------------------


async def test_events_come_newest_first_with_every_field(store: EventStore) -> None:
    await apply(
        store,
        plans(
            env(
                "r1",
                act(
                    0,
                    "ProductAdded",
                    T,
                    attributes={"product": "Accessories", "price": 9.5, "tags": ["a"]},
                    platform="unknown",
                    platform_raw="Fridge",
                    app_version="1.2.3",
                    user_time=T + 19_800_000,
                    user_timezone_offset=19_800,
                    moe_os_type="android",
                ),
                device_id="d-7",
                project_code="P1",
            )
        ),
    )
    await apply(store, plans(env("r2", act(0, "Opened", T - 1_000), client_ip=None)))
    assert await all_events(store) == [
        {
            "event_id": "r2-0",
            "request_id": "r2",
            "action": "Opened",
            "attributes": {},
            "platform": "ANDROID",
            "platform_raw": None,
            "app_version": "1.0",
            "user_time": "2023-11-14T22:13:19.000Z",
            "current_time": "2023-11-14T22:13:19.000Z",
            "user_timezone_offset": 0,
            "received_at": "2023-11-14T22:14:20.000Z",
            "client_ip": None,
            "device_id": None,
            "customer_id": "123",
            "project_code": None,
            "moe_os_type": None,
        },
        {
            "event_id": "r1-0",
            "request_id": "r1",
            "action": "ProductAdded",
            "attributes": {"product": "Accessories", "price": 9.5, "tags": ["a"]},
            "platform": "unknown",
            "platform_raw": "Fridge",
            "app_version": "1.2.3",
            "user_time": "2023-11-15T03:43:20.000Z",
            "current_time": "2023-11-14T22:13:20.000Z",
            "user_timezone_offset": 19_800,
            "received_at": "2023-11-14T22:14:20.000Z",
            "client_ip": "198.51.100.7",
            "device_id": "d-7",
            "customer_id": "123",
            "project_code": "P1",
            "moe_os_type": "android",
        },
    ]


async def test_events_of_another_workspace_are_not_listed(store: EventStore) -> None:
    await apply(
        store,
        plans(env("r1", act(0, "Opened", T)), env("r2", act(0, "Opened", T), workspace_id="WS2")),
    )
    assert [e["event_id"] for e in await all_events(store, "WS1")] == ["r1-0"]
    assert [e["event_id"] for e in await all_events(store, "WS2")] == ["r2-0"]
    assert await all_events(store, "WS3") == []


async def test_events_filter_on_customer_action_and_current_time(store: EventStore) -> None:
    await apply(
        store,
        plans(
            env("a", act(0, "Opened", T), act(1, "Bought", T + 1_000)),
            env("b", act(0, "Opened", T + 2_000), customer_id="456"),
            env("c", act(0, "Bought", T + 3_000)),
        ),
    )
    assert await event_ids(store) == ["c-0", "b-0", "a-1", "a-0"]
    assert await event_ids(store, customer_id="123") == ["c-0", "a-1", "a-0"]
    assert await event_ids(store, customer_id="456") == ["b-0"]
    assert await event_ids(store, action="Bought") == ["c-0", "a-1"]
    assert await event_ids(store, customer_id="123", action="Opened") == ["a-0"]
    assert await event_ids(store, since=T + 1_000) == ["c-0", "b-0", "a-1"]
    assert await event_ids(store, until=T + 3_000) == ["b-0", "a-1", "a-0"]  # until is exclusive
    assert await event_ids(store, since=T + 1_000, until=T + 2_001) == ["b-0", "a-1"]
    assert await event_ids(store, since=T + 3_001) == []
    assert await event_ids(store, customer_id="nobody") == []


@pytest.mark.parametrize("total", [20, 21])
async def test_cursor_paging_returns_every_event_exactly_once(
    store: EventStore, total: int
) -> None:
    await apply(store, plans(*(env(f"r{i:02d}", act(0, "Opened", T + i)) for i in range(total))))
    pages: list[list[str]] = []
    cursor: int | None = None
    while True:
        events, cursor = await store.events(
            EventQuery(workspace_id="WS1", limit=7, before_seq=cursor)
        )
        pages.append([e["event_id"] for e in events])
        if cursor is None:
            break
        assert len(pages) < 10, "the cursor never ends"
    expected = [f"r{i:02d}-0" for i in reversed(range(total))]
    assert [len(p) for p in pages] == ([7, 7, 6] if total == 20 else [7, 7, 7])
    assert [e for page in pages for e in page] == expected


async def test_cursor_paging_keeps_the_filters(store: EventStore) -> None:
    await apply(
        store,
        plans(*(env(f"r{i}", act(0, "Bought" if i % 2 else "Opened", T + i)) for i in range(10))),
    )
    seen: list[str] = []
    cursor: int | None = None
    for _ in range(5):
        events, cursor = await store.events(
            EventQuery(workspace_id="WS1", action="Bought", limit=2, before_seq=cursor)
        )
        seen += [e["event_id"] for e in events]
        if cursor is None:
            break
    assert seen == ["r9-0", "r7-0", "r5-0", "r3-0", "r1-0"]
    assert cursor is None


async def test_following_starts_at_the_end_and_returns_later_events_oldest_first(
    store: EventStore,
) -> None:
    assert await store.events(EventQuery(workspace_id="WS1", after_seq=FROM_END)) == ([], 0)
    await apply(store, plans(env("r1", act(0, "Opened", T)), env("r2", act(0, "Opened", T))))
    events, start = await store.events(EventQuery(workspace_id="WS1", after_seq=FROM_END))
    assert events == []
    assert start is not None and start > 0
    assert await store.events(EventQuery(workspace_id="WS1", after_seq=start)) == ([], None)

    await apply(
        store,
        plans(
            env("r3", act(0, "Opened", T), act(1, "Bought", T)),
            env("r4", act(0, "Opened", T), workspace_id="WS2"),
            env("r5", act(0, "Closed", T)),
        ),
    )
    events, position = await store.events(EventQuery(workspace_id="WS1", after_seq=start))
    assert [e["event_id"] for e in events] == ["r3-0", "r3-1", "r5-0"]
    assert position is not None and position > start
    assert await store.events(EventQuery(workspace_id="WS1", after_seq=position)) == ([], None)
    events, first = await store.events(EventQuery(workspace_id="WS1", after_seq=start, limit=2))
    assert [e["event_id"] for e in events] == ["r3-0", "r3-1"]
    events, _ = await store.events(EventQuery(workspace_id="WS1", after_seq=first))
    assert [e["event_id"] for e in events] == ["r5-0"]
    assert await store.events(EventQuery(workspace_id="WS1", after_seq=FROM_END)) == (
        [],
        position,
    )


# -- schema, issues, counts -------------------------------------------------------------------


async def test_schema_counts_event_names_and_attribute_types(store: EventStore) -> None:
    await apply(
        store,
        plans(
            env(
                "r1",
                act(
                    0,
                    "Bought",
                    T + 2_000,
                    attributes={
                        "gift": True,
                        "price": 9.5,
                        "sku": "A-1",
                        "paid_at": "2024-02-26T09:24:13Z",
                        "tags": ["a", "b"],
                        "mixed": [1, "a"],
                        "address": {"city": "Pune"},
                    },
                ),
                act(1, "Opened", T),
            ),
        ),
    )
    await apply(
        store,
        plans(env("r2", act(0, "Bought", T + 5_000, attributes={"price": "9.50", "gift": False}))),
    )
    assert await store.schema("WS1") == {
        "events": [
            {
                "action": "Bought",
                "count": 2,
                "first_seen": "2023-11-14T22:13:22.000Z",
                "last_seen": "2023-11-14T22:13:25.000Z",
                "attributes": {
                    "address": {"object": 1},
                    "gift": {"boolean": 2},
                    "mixed": {"array": 1},
                    "paid_at": {"datetime": 1},
                    "price": {"number": 1, "string": 1},
                    "sku": {"string": 1},
                    "tags": {"array<string>": 1},
                },
            },
            {
                "action": "Opened",
                "count": 1,
                "first_seen": "2023-11-14T22:13:20.000Z",
                "last_seen": "2023-11-14T22:13:20.000Z",
                "attributes": {},
            },
        ]
    }
    assert await store.schema("WS2") == {"events": []}


async def test_issues_list_reason_request_index_and_attribute_since_a_time(
    store: EventStore,
) -> None:
    first = env(
        "r1",
        act(0, "Opened", T),
        warnings=[Warning(0, "reserved_prefix", "moe_x"), Warning(1, "future_dated")],
        event_count=2,
    )
    second = env(
        "r2",
        act(0, "Opened", T),
        warnings=[Warning(0, "value_truncated", "note")],
        received_at=RECEIVED + 5_000,
    )
    await apply(store, plans(first, second))
    assert await store.issues("WS1", None) == [
        {
            "request_id": "r1",
            "index": 0,
            "attribute": "moe_x",
            "reason": "reserved_prefix",
            "at": "2023-11-14T22:14:20.000Z",
        },
        {
            "request_id": "r1",
            "index": 1,
            "attribute": None,
            "reason": "future_dated",
            "at": "2023-11-14T22:14:20.000Z",
        },
        {
            "request_id": "r2",
            "index": 0,
            "attribute": "note",
            "reason": "value_truncated",
            "at": "2023-11-14T22:14:25.000Z",
        },
    ]
    assert [i["request_id"] for i in await store.issues("WS1", RECEIVED + 5_000)] == ["r2"]
    assert await store.issues("WS1", RECEIVED + 5_001) == []
    assert await store.issues("WS2", None) == []


async def test_counts_processed_and_dropped_events(store: EventStore) -> None:
    assert await store.counts("WS1") == {}
    await apply(
        store,
        plans(
            env(
                "r1",
                act(0, "Opened", T),
                act(2, "Closed", T),
                warnings=[Warning(1, "reserved_prefix"), Warning(0, "name_truncated", "x")],
                event_count=3,
            ),
            env(
                "r2",
                customer_id="guest",
                warnings=[
                    Warning(0, "customer_id_disallowed"),
                    Warning(1, "customer_id_disallowed"),
                ],
                event_count=2,
            ),
            env("r3", act(0, "Opened", T), workspace_id="WS2"),
        ),
    )
    assert await store.counts("WS1") == {"processed_events": 2, "dropped_events": 3}
    assert await store.counts("WS2") == {"processed_events": 1}
    assert await store.user("WS1", "guest") is None


async def test_add_counts_adds_to_named_counters_per_workspace(store: EventStore) -> None:
    await store.add_counts({("WS1", "rejected_requests"): 2, ("WS2", "rejected_requests"): 1})
    await store.add_counts({("WS1", "rejected_requests"): 3})
    await store.add_counts({})
    await apply(store, plans(env("r1", act(0, "Opened", T))))
    assert await store.counts("WS1") == {"rejected_requests": 5, "processed_events": 1}
    assert await store.counts("WS2") == {"rejected_requests": 1}


# -- idempotency ------------------------------------------------------------------------------


def _history() -> list[Envelope]:
    return [
        env(
            "r1",
            act(0, "Opened", T, attributes={"n": 1}),
            act(2, "Bought", T + 1_000),
            warnings=[Warning(1, "reserved_prefix")],
            event_count=3,
        ),
        env("r2", act(0, "Opened", T + 2_000, attributes={"n": "x"}), device_id="d-2"),
    ]


async def test_applying_the_same_plans_again_changes_nothing(store: EventStore) -> None:
    await apply(store, plans(*_history()))
    before = await snapshot(store)
    assert before["counts"] == {"processed_events": 3, "dropped_events": 1}
    await apply(store, plans(*_history()))
    await apply(store, plans(_history()[1]))
    assert await snapshot(store) == before


async def test_a_batch_mixing_applied_and_new_plans_counts_only_the_new(store: EventStore) -> None:
    await apply(store, plans(*_history()))
    await apply(store, plans(*_history(), env("r3", act(0, "Opened", T + 9_000))))
    after = await snapshot(store)
    assert after["counts"] == {"processed_events": 4, "dropped_events": 1}
    assert after["user"]["event_count"] == 4
    assert [e["event_id"] for e in after["events"]] == ["r3-0", "r2-0", "r1-2", "r1-0"]
    assert after["schema"]["events"][1]["count"] == 3  # Opened: r1, r2, r3
    assert len(after["issues"]) == 1


async def test_the_same_plan_twice_in_one_batch_counts_once(store: EventStore) -> None:
    once = env("r1", act(0, "Opened", T))
    await apply(store, plans(once, once))
    assert await store.counts("WS1") == {"processed_events": 1}
    assert [e["event_id"] for e in await all_events(store)] == ["r1-0"]


async def test_reopened_file_store_still_knows_what_it_applied(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    first = open_event_store(url)
    await first.open()
    await apply(first, plans(*_history()))
    before = await snapshot(first)
    await first.aclose()
    second = open_event_store(url)
    await second.open()
    try:
        await apply(second, plans(*_history()))
        assert await snapshot(second) == before
    finally:
        await second.aclose()


# -- Identity Resolution ----------------------------------------------------------------------


async def test_plan_with_only_identifiers_creates_a_user_keyed_by_the_first_identifier(
    store: EventStore,
) -> None:
    await apply(
        store,
        plans(
            env(
                "r1",
                act(0, "Opened", T),
                customer_id=None,
                user_identifiers={"email": "ada@example.com", "mobile": "+15550100"},
            )
        ),
    )
    user = await store.user("WS1", "email:ada@example.com")
    assert without_moengage_id(user) == {
        "customer_id": "email:ada@example.com",
        "attributes": {},
        "identifiers": {"email": "ada@example.com", "mobile": "+15550100"},
        "first_seen": "2023-11-14T22:13:20.000Z",
        "last_seen": "2023-11-14T22:13:20.000Z",
        "event_count": 1,
        "devices": [
            {
                "device_id": "email:ada@example.com",
                "platform": "ANDROID",
                "app_version": "1.0",
                "first_seen": "2023-11-14T22:13:20.000Z",
                "last_seen": "2023-11-14T22:13:20.000Z",
                "last_ip": "198.51.100.7",
            }
        ],
    }
    events = await all_events(store)
    assert [(e["event_id"], e["customer_id"]) for e in events] == [
        ("r1-0", "email:ada@example.com")
    ]


async def test_later_plan_with_the_same_identifier_value_lands_on_the_same_user(
    store: EventStore,
) -> None:
    await apply(
        store,
        plans(
            env("r1", act(0, "Opened", T), customer_id=None, user_identifiers={"email": "a@x.io"})
        ),
    )
    await apply(
        store,
        plans(
            env(
                "r2",
                act(0, "Bought", T + 1_000),
                customer_id=None,
                user_identifiers={"mobile": "+15550100", "email": "a@x.io"},
            ),
            env(
                "r3",
                act(0, "Closed", T + 2_000),
                customer_id=None,
                user_identifiers={"mobile": "+15550100"},
            ),
        ),
    )
    user = await store.user("WS1", "email:a@x.io")
    assert user is not None
    assert user["event_count"] == 3
    assert user["identifiers"] == {"email": "a@x.io", "mobile": "+15550100"}
    assert (user["first_seen"], user["last_seen"]) == (
        "2023-11-14T22:13:20.000Z",
        "2023-11-14T22:13:22.000Z",
    )
    assert await store.user("WS1", "mobile:+15550100") is None
    assert await event_ids(store, customer_id="email:a@x.io") == ["r3-0", "r2-0", "r1-0"]


async def test_identifiers_sent_with_a_customer_id_resolve_to_that_customer(
    store: EventStore,
) -> None:
    await apply(
        store,
        plans(env("r1", act(0, "Opened", T), customer_id="c-9", user_identifiers={"email": "b@x"})),
    )
    await apply(
        store,
        plans(
            env("r2", act(0, "Opened", T + 1), customer_id=None, user_identifiers={"email": "b@x"})
        ),
    )
    user = await store.user("WS1", "c-9")
    assert user is not None
    assert (user["event_count"], user["identifiers"]) == (2, {"email": "b@x"})
    assert await store.user("WS1", "email:b@x") is None


async def test_identifiers_of_one_workspace_do_not_resolve_in_another(store: EventStore) -> None:
    await apply(
        store,
        plans(
            env("r1", act(0, "Opened", T), customer_id="c-9", user_identifiers={"email": "b@x"}),
            env(
                "r2",
                act(0, "Opened", T),
                customer_id=None,
                user_identifiers={"email": "b@x"},
                workspace_id="WS2",
            ),
        ),
    )
    assert await store.user("WS2", "c-9") is None
    other = await store.user("WS2", "email:b@x")
    assert other is not None and other["event_count"] == 1


# -- Track User -------------------------------------------------------------------------------


async def test_track_user_plans_create_the_profile_and_merge_attributes(
    store: EventStore,
) -> None:
    await apply(store, [user_plan("u1", "123", {"name": "Ada", "plan": "free", "age": 36})])
    await apply(store, [user_plan("u2", "123", {"plan": "pro", "tags": ["x"]})])
    assert without_moengage_id(await store.user("WS1", "123")) == {
        "customer_id": "123",
        "attributes": {"name": "Ada", "plan": "pro", "age": 36, "tags": ["x"]},
        "identifiers": {},
        "first_seen": "2023-11-14T22:14:20.000Z",
        "last_seen": "2023-11-14T22:14:20.000Z",
        "event_count": 0,
        "devices": [],
    }
    assert await all_events(store) == []
    assert await store.counts("WS1") == {}


async def test_track_user_attributes_sit_beside_the_events_of_the_same_user(
    store: EventStore,
) -> None:
    await apply(store, plans(env("r1", act(0, "Opened", T))))
    await apply(store, [user_plan("u1", "123", {"name": "Ada"})])
    await apply(store, plans(env("r2", act(0, "Opened", T + 1_000))))
    user = await store.user("WS1", "123")
    assert user is not None
    assert (user["attributes"], user["event_count"], len(user["devices"])) == (
        {"name": "Ada"},
        2,
        1,
    )


async def test_update_existing_only_does_not_create_a_user(store: EventStore) -> None:
    await apply(store, [user_plan("u1", "new", {"name": "Ada"}, update_existing_only=True)])
    assert await store.user("WS1", "new") is None
    await apply(store, [user_plan("u2", "old", {"name": "Bob", "plan": "free"})])
    await apply(store, [user_plan("u3", "old", {"plan": "pro"}, update_existing_only=True)])
    user = await store.user("WS1", "old")
    assert user is not None
    assert user["attributes"] == {"name": "Bob", "plan": "pro"}


async def test_update_existing_only_sees_a_user_created_earlier_in_the_same_batch(
    store: EventStore,
) -> None:
    """Plans apply in order within a batch too: the user's first event, then an update."""
    await apply(
        store,
        [
            *plans(env("r1", act(0, "Opened", T), customer_id="new")),
            user_plan("u1", "new", {"plan": "pro"}, update_existing_only=True),
            *plans(env("r2", act(0, "Opened", T + 1_000), customer_id="new")),
        ],
    )
    user = await store.user("WS1", "new")
    assert user is not None
    assert (user["attributes"], user["event_count"]) == ({"plan": "pro"}, 2)


async def test_update_existing_only_before_the_users_first_event_in_a_batch_sets_nothing(
    store: EventStore,
) -> None:
    await apply(
        store,
        [
            user_plan("u1", "new", {"plan": "pro"}, update_existing_only=True),
            *plans(env("r1", act(0, "Opened", T), customer_id="new")),
        ],
    )
    user = await store.user("WS1", "new")
    assert user is not None
    assert (user["attributes"], user["event_count"]) == ({}, 1)


async def test_track_user_plans_are_idempotent(store: EventStore) -> None:
    await apply(store, [user_plan("u1", "123", {"plan": "free"})])
    await apply(store, [user_plan("u2", "123", {"plan": "pro"})])
    await apply(store, [user_plan("u1", "123", {"plan": "free"})])  # redelivered
    user = await store.user("WS1", "123")
    assert user is not None
    assert user["attributes"] == {"plan": "pro"}


# -- one batch, one transaction; lifecycle ----------------------------------------------------


async def test_a_batch_the_store_cannot_write_is_stored_not_at_all(store: EventStore) -> None:
    """The second plan carries an attribute value that is not JSON (an `object()`): the edge
    never builds such a plan, but it makes a real adapter fail after the first plan of the
    batch was written inside the transaction, which is what this test needs."""
    good = env("good", act(0, "Opened", T), warnings=[Warning(0, "reserved_prefix", "moe_x")])
    broken = env("broken", act(0, "Opened", T, attributes={"x": object()}), customer_id="456")
    with pytest.raises((StoreError, TypeError)):
        await apply(store, plans(good, broken))
    assert await snapshot(store) == {
        "user": None,
        "events": [],
        "schema": {"events": []},
        "issues": [],
        "counts": {},
    }
    await apply(store, plans(good))  # not marked as processed by the failed batch
    assert await store.counts("WS1") == {"processed_events": 1}
    assert len(await store.issues("WS1", None)) == 1


class Abandoned(Exception):
    """Raised inside a batch's block to end it without committing."""


async def test_reads_while_a_batch_is_open_never_see_its_rows(store: EventStore) -> None:
    """The batch claims and writes one plan, a read starts, then the batch's block raises:
    whenever the read runs (during the batch elsewhere, after it on SQLite), it sees nothing."""
    planned = plans(env("r1", act(0, "Opened", T)))
    with pytest.raises(Abandoned):
        async with store.batch() as batch:
            claimed = await batch.claim(planned)
            assert [p.request_id for p in claimed] == ["r1"]
            await batch.write(Changes(claimed, [], [], rollup(claimed)))
            reads = asyncio.gather(store.counts("WS1"), store.user("WS1", "123"), all_events(store))
            await asyncio.sleep(0.05)  # a chance for the reads to run while the batch is open
            raise Abandoned
    assert await reads == [{}, None, []]
    await apply(store, planned)  # claimed by the batch that did not commit: claimed again
    assert await store.counts("WS1") == {"processed_events": 1}


async def test_a_closed_store_raises_store_error_and_closing_twice_is_fine(
    make_store: EventStoreFactory, tmp_path: Path
) -> None:
    store = make_store(tmp_path)
    await store.open()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError):
        await apply(store, plans(env("r1", act(0, "Opened", T))))
    with pytest.raises(StoreError):
        await store.counts("WS1")
    await store.open()
    try:
        await apply(store, plans(env("r1", act(0, "Opened", T))))
        assert (await store.counts("WS1"))["processed_events"] == 1
    finally:
        await store.aclose()


# -- Live stream (issue 13 item 2): positions, and the warnings of their requests --


async def test_events_with_seq_and_the_warnings_of_their_requests(store: EventStore) -> None:
    warned = env(
        "w1",
        act(0, "A", T),
        act(2, "B", T),
        warnings=[Warning(1, "reserved_prefix"), Warning(2, "value_truncated", "desc")],
        received_at=T + 5,
    )
    clean = env("c1", act(0, "C", T), received_at=T + 6)
    await apply(store, [plan(warned), plan(clean)])
    events, last = await store.events(EventQuery(workspace_id="WS1", after_seq=0, with_seq=True))
    assert [e["action"] for e in events] == ["A", "B", "C"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and last == seqs[-1]
    plain, _ = await store.events(EventQuery(workspace_id="WS1", after_seq=0))
    assert plain == [{k: v for k, v in e.items() if k != "seq"} for e in events]
    warnings = await store.request_warnings("WS1", ["w1", "c1", "w1"], T + 5, T + 6)
    assert warnings == {
        "w1": [
            {"index": 1, "reason": "reserved_prefix"},
            {"index": 2, "reason": "value_truncated", "attribute": "desc"},
        ]
    }
    assert await store.request_warnings("WS1", ["w1"], T + 6, T + 9) == {}
    assert await store.request_warnings("WS2", ["w1"], T, T + 9) == {}
    assert await store.request_warnings("WS1", [], T, T + 9) == {}
