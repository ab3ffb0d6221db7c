"""`trackd.processor.rollup`: a batch of plans becomes one row change per user, device, event
name and attribute type."""

from __future__ import annotations

from typing import Any

from trackd.models import Action, Envelope, Plan, Warning
from trackd.processor.plan import plan
from trackd.processor.rollup import DeviceRollup, UserRollup, rollup

T = 1_700_000_000_000


def act(index: int, name: str, at: int, **fields: Any) -> Action:
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


def planned(request_id: str, *actions: Action, **fields: Any) -> Plan:
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": T + 60_000,
        "customer_id": "123",
        "device_id": None,
        "actions": list(actions),
        "client_ip": "198.51.100.7",
        "event_count": len(actions),
    }
    values.update(fields)
    return plan(Envelope(**values))


def test_users_span_the_event_times_of_every_plan_in_the_batch() -> None:
    r = rollup(
        [
            planned("a", act(0, "A", T + 5), act(1, "A", T + 2)),
            planned("b", act(0, "A", T + 9)),
            planned("c", act(0, "A", T + 1), customer_id="456"),
            planned("d", act(0, "A", T + 3), workspace_id="WS2"),
        ]
    )
    assert r.users == {
        ("WS1", "123"): UserRollup(first_seen=T + 2, last_seen=T + 9, event_count=3),
        ("WS1", "456"): UserRollup(first_seen=T + 1, last_seen=T + 1, event_count=1),
        ("WS2", "123"): UserRollup(first_seen=T + 3, last_seen=T + 3, event_count=1),
    }


def test_device_takes_platform_version_and_ip_of_its_latest_event() -> None:
    r = rollup(
        [
            planned("a", act(0, "A", T + 8, platform="iOS", app_version="2.0")),
            planned(
                "b",
                act(0, "A", T + 4, platform="web", app_version="1.0"),
                client_ip="203.0.113.9",
            ),
            planned("c", act(0, "A", T + 6, platform="TV", app_version=None), device_id="tv"),
        ]
    )
    assert r.devices == {
        ("WS1", "123", "123"): DeviceRollup(
            first_seen=T + 4,
            last_seen=T + 8,
            platform="iOS",
            app_version="2.0",
            last_ip="198.51.100.7",
        ),
        ("WS1", "123", "tv"): DeviceRollup(
            first_seen=T + 6,
            last_seen=T + 6,
            platform="TV",
            app_version=None,
            last_ip="198.51.100.7",
        ),
    }


def test_a_later_plan_at_the_same_time_wins_the_device_fields() -> None:
    r = rollup(
        [
            planned("a", act(0, "A", T, app_version="1.0")),
            planned("b", act(0, "A", T, app_version="2.0"), client_ip="203.0.113.9"),
        ]
    )
    device = r.devices[("WS1", "123", "123")]
    assert (device.app_version, device.last_ip) == ("2.0", "203.0.113.9")


def test_event_names_count_with_first_and_last_time() -> None:
    r = rollup(
        [
            planned("a", act(0, "Bought", T + 5), act(1, "Opened", T + 1)),
            planned("b", act(0, "Bought", T + 2), act(1, "Bought", T + 7)),
        ]
    )
    assert r.event_names == {
        ("WS1", "Bought"): [3, T + 2, T + 7],
        ("WS1", "Opened"): [1, T + 1, T + 1],
    }


def test_attribute_types_are_counted_per_event_name_and_type() -> None:
    r = rollup(
        [
            planned("a", act(0, "Bought", T, attributes={"price": 1, "sku": "x"})),
            planned("b", act(0, "Bought", T, attributes={"price": "1"}), act(1, "Opened", T)),
            planned("c", act(0, "Opened", T, attributes={"price": 2})),
        ]
    )
    assert r.attributes == {
        ("WS1", "Bought", "price", "number"): 1,
        ("WS1", "Bought", "sku", "string"): 1,
        ("WS1", "Bought", "price", "string"): 1,
        ("WS1", "Opened", "price", "number"): 1,
    }


def test_counters_add_processed_and_dropped_events_per_workspace() -> None:
    r = rollup(
        [
            planned(
                "a",
                act(0, "A", T),
                act(2, "A", T),
                warnings=[Warning(1, "reserved_prefix")],
                event_count=3,
            ),
            planned("b", act(0, "A", T)),
            planned("c", act(0, "A", T), workspace_id="WS2"),
        ]
    )
    assert r.counters == {
        ("WS1", "processed_events"): 3,
        ("WS1", "dropped_events"): 1,
        ("WS2", "processed_events"): 1,
    }


def test_plans_without_events_or_customer_add_counts_only() -> None:
    dropped = planned(
        "a",
        customer_id="guest",
        warnings=[Warning(0, "customer_id_disallowed")],
        event_count=1,
    )
    user_update = planned("b", kind="customer", user_attributes={"name": "Ada"})
    # an Identity Resolution plan before the store resolved it to a customer id
    unresolved = planned(
        "c", act(0, "A", T), customer_id=None, user_identifiers={"email": "a@x.io"}
    )
    r = rollup([dropped, user_update, unresolved])
    assert (r.users, r.devices, r.event_names, r.attributes) == ({}, {}, {}, {})
    assert r.counters == {("WS1", "dropped_events"): 1, ("WS1", "processed_events"): 1}


def test_an_empty_batch_rolls_up_to_nothing() -> None:
    r = rollup([])
    assert (r.users, r.devices, r.event_names, r.attributes, r.counters) == ({}, {}, {}, {}, {})
