"""The EventStore contract for Track Device and Bulk Import (trackd/store/base.py's
`Batch.devices`, `put_devices`; the `devices` a profile shows; a bulk's parts applied in order),
run against every adapter: memory, sqlite, postgres.

Plans are built as the processor builds them (`plan` from an `Envelope`) and applied with
`apply`, so what is checked is what the read API would show."""

from __future__ import annotations

from typing import Any

import pytest

from trackd.models import Action, Device, Envelope, Kind, MergePair, Plan, Warning
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store.base import EventQuery, EventStore
from trackd.store.records import DeviceWrite, StoredDevice

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
RECEIVED = T + 60_000  # 2023-11-14T22:14:20.000Z


def act(index: int, name: str, at: int) -> Action:
    return Action(
        index=index, action=name, attributes={}, platform="ANDROID", app_version="1.0",
        current_time=at, user_time=at, user_timezone_offset=0,
    )  # fmt: skip


def event(request_id: str, customer_id: str, *times: int) -> Plan:
    return plan(
        Envelope(
            request_id=request_id, workspace_id="WS1", received_at=RECEIVED,
            customer_id=customer_id, device_id=None,
            actions=[act(i, "Opened", at) for i, at in enumerate(times)],
            client_ip="198.51.100.7", event_count=len(times),
        )
    )  # fmt: skip


def device_envelope(
    request_id: str, customer_id: str, device_id: str, **attributes: Any
) -> Envelope:
    return Envelope(
        request_id=request_id,
        workspace_id="WS1",
        received_at=RECEIVED,
        customer_id=customer_id,
        device_id=device_id,
        actions=[],
        kind=Kind.DEVICE,
        client_ip="198.51.100.9",
        device=Device(
            device_id=device_id,
            platform=attributes.pop("platform", "ANDROID"),
            app_version=attributes.pop("app_version", None),
            attributes=attributes,
        ),
    )


def views(user: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert user is not None
    return [{k: v for k, v in d.items() if k not in ("first_seen",)} for d in user["devices"]]


async def test_devices_and_put_devices_read_and_write_in_the_batch(store: EventStore) -> None:
    await apply(store, [event("e1", "u1", T)])
    async with store.batch() as batch:
        await batch.claim([])
        assert await batch.devices([("WS1", "u1"), ("WS1", "nobody")]) == {
            ("WS1", "u1"): [StoredDevice("u1", {}, T)]
        }
        await batch.put_devices(
            [
                DeviceWrite("WS1", "u1", "d1", "iOS", "3.0", {"push_id": "p1", "idfv": "v"},
                            RECEIVED, RECEIVED, "192.0.2.1"),
                DeviceWrite("WS1", "u1", "d2", "iOS", None, {"push_id": "p2"}, T - 5, RECEIVED,
                            None, replaces=("d1",)),
                DeviceWrite("WS1", "u1", "u1", "web", None, {"push_id": "p3"}, RECEIVED,
                            RECEIVED, None),
            ]
        )  # fmt: skip
        assert await batch.devices([("WS1", "u1")]) == {
            ("WS1", "u1"): [
                StoredDevice("d2", {"push_id": "p2"}, T - 5),
                StoredDevice("u1", {"push_id": "p3"}, T),  # the earlier first seen stays
            ]
        }
    user = await store.user("WS1", "u1")
    assert views(user) == [
        {"device_id": "d2", "platform": "iOS", "app_version": None,
         "last_seen": "2023-11-14T22:14:20.000Z", "last_ip": None, "push_id": "p2"},
        {"device_id": "u1", "platform": "web", "app_version": "1.0",
         "last_seen": "2023-11-14T22:14:20.000Z", "last_ip": "198.51.100.7", "push_id": "p3"},
    ]  # fmt: skip


async def test_track_device_applies_in_queue_order_with_events(store: EventStore) -> None:
    plans = [
        plan(device_envelope("d0", "u1", "d1", push_id="p0")),  # before the user exists
        event("e1", "u1", T),
        plan(device_envelope("d1", "u1", "d1", push_id="p1", model="M", app_version="2")),
        plan(device_envelope("d2", "u1", "d1", push_id="p2", platform="iOS")),
    ]
    await apply(store, plans)
    await apply(store, [event("e2", "u1", RECEIVED + 1)])  # later events keep the attributes
    user = await store.user("WS1", "u1")
    assert views(user)[0] == {
        "device_id": "d1", "platform": "iOS", "app_version": "2",
        "last_seen": "2023-11-14T22:14:20.000Z", "last_ip": "198.51.100.9",
        "push_id": "p2", "model": "M",
    }  # fmt: skip
    issues = await store.issues("WS1", None)
    assert [(i["request_id"], i["reason"], i["attribute"]) for i in issues] == [
        ("d0", "unknown_user", "customer_id")
    ]


async def test_a_merge_moves_device_attributes_with_the_devices(store: EventStore) -> None:
    await apply(store, [event("e1", "old", T), event("e2", "new", T + 1)])
    await apply(store, [plan(device_envelope("d1", "old", "phone", push_id="p1", model="M"))])
    merge = Envelope(
        request_id="m1", workspace_id="WS1", received_at=RECEIVED, customer_id=None,
        device_id=None, actions=[], kind=Kind.MERGE, merges=[MergePair("old", "new")],
    )  # fmt: skip
    await apply(store, [plan(merge)])
    user = await store.user("WS1", "new")
    assert user is not None
    phone = [d for d in user["devices"] if d["device_id"] == "phone"]
    assert [(d["push_id"], d["model"]) for d in phone] == [("p1", "M")]


async def test_a_bulk_applies_its_elements_in_order_with_their_issues(store: EventStore) -> None:
    customer = Envelope(
        request_id="b1", workspace_id="WS1", received_at=RECEIVED, customer_id="u1",
        device_id=None, actions=[], kind=Kind.CUSTOMER, user_attributes={"plan": "gold"},
    )  # fmt: skip
    event_element = Envelope(
        request_id="b1", workspace_id="WS1", received_at=RECEIVED, customer_id="u1",
        device_id="u1", actions=[act(0, "Opened", T), act(1, "Opened", T + 1)], kind=Kind.EVENT,
        event_count=2,
    )  # fmt: skip
    device_element = device_envelope("b1", "u1", "d1", push_id="p1")
    bulk = Envelope(
        request_id="b1",
        workspace_id="WS1",
        received_at=RECEIVED,
        customer_id=None,
        device_id=None,
        actions=[],
        kind=Kind.BULK,
        event_count=2,
        warnings=[Warning(1, "invalid_element", type="event", message="m")],
        elements=[customer, event_element, device_element],
    )
    await apply(store, [plan(bulk)])
    await apply(store, [plan(bulk)])  # redelivered: nothing twice
    user = await store.user("WS1", "u1")
    assert user is not None
    assert (user["attributes"], user["event_count"]) == ({"plan": "gold"}, 2)
    assert sorted(d["device_id"] for d in user["devices"]) == ["d1", "u1"]
    page, _ = await store.events(EventQuery(workspace_id="WS1"))
    assert sorted(e["event_id"] for e in page) == ["b1-2-0", "b1-2-1"]
    issues = await store.issues("WS1", None)
    assert [(i["request_id"], i["index"], i["reason"]) for i in issues] == [
        ("b1", 1, "invalid_element")
    ]
