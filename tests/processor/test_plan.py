"""`trackd.processor.plan`: an envelope becomes the `Plan` a store applies, purely and stably."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trackd.models import Action, Envelope, EventRecord, IssueRecord, Plan, Warning
from trackd.processor.plan import DATE_MEMO, _dated, event_id, plan, value_type
from trackd.wire.values import infer_type

T = 1_700_000_000_000
RECEIVED = T + 60_000


def act(index: int, name: str, **fields: Any) -> Action:
    values: dict[str, Any] = {
        "index": index,
        "action": name,
        "attributes": {},
        "current_time": T + index,
        "user_time": T + index,
        "user_timezone_offset": 0,
    }
    values.update(fields)
    return Action(**values)


def env(*actions: Action, **fields: Any) -> Envelope:
    values: dict[str, Any] = {
        "request_id": "req",
        "workspace_id": "WS1",
        "received_at": RECEIVED,
        "customer_id": "123",
        "device_id": None,
        "actions": list(actions),
        "event_count": len(actions),
    }
    values.update(fields)
    return Envelope(**values)


def test_event_ids_are_the_request_id_and_the_action_index() -> None:
    assert event_id("abc", 0) == "abc-0"
    assert event_id("abc", 12) == "abc-12"
    planned = plan(env(act(0, "A"), act(2, "B"), act(5, "C"), request_id="r-x"))
    assert [e.event_id for e in planned.events] == ["r-x-0", "r-x-2", "r-x-5"]


def test_plan_carries_every_field_of_the_envelope_and_its_actions() -> None:
    envelope = Envelope(
        request_id="req",
        workspace_id="WS1",
        received_at=RECEIVED,
        customer_id="123",
        device_id="d-1",
        project_code="P1",
        client_ip="203.0.113.9",
        user_identifiers={"email": "a@x.io"},
        actions=[
            Action(
                index=0,
                action="Bought",
                attributes={"price": 9.5, "sku": "A-1"},
                platform="unknown",
                platform_raw="Fridge",
                app_version="1.2",
                current_time=T,
                user_time=T + 3_600_000,
                user_timezone_offset=3_600,
                moe_os_type="android",
                real_time_action="yes",
            )
        ],
        warnings=[Warning(0, "unknown_platform", "platform")],
        event_count=1,
    )
    assert plan(envelope) == Plan(
        request_id="req",
        workspace_id="WS1",
        kind="event",
        customer_id="123",
        identifiers={"email": "a@x.io"},
        device_id="d-1",
        received_at=RECEIVED,
        client_ip="203.0.113.9",
        events=[
            EventRecord(
                event_id="req-0",
                request_id="req",
                action="Bought",
                attributes={"price": 9.5, "sku": "A-1"},
                platform="unknown",
                platform_raw="Fridge",
                app_version="1.2",
                user_time=T + 3_600_000,
                current_time=T,
                user_timezone_offset=3_600,
                received_at=RECEIVED,
                client_ip="203.0.113.9",
                device_id="d-1",
                project_code="P1",
                moe_os_type="android",
            )
        ],
        schema=[
            ("Bought", "", "event"),
            ("Bought", "price", "number"),
            ("Bought", "sku", "string"),
        ],
        issues=[
            IssueRecord(
                request_id="req",
                index=0,
                reason="unknown_platform",
                attribute="platform",
                at=RECEIVED,
            )
        ],
        dropped_events=0,
        user_attributes=None,
        update_existing_only=False,
    )


def test_plan_is_pure_and_stable_across_redelivery() -> None:
    envelope = env(
        act(0, "A", attributes={"n": 1, "tags": ["a"], "obj": {"k": {"deep": "x"}}}),
        act(2, "B"),
        warnings=[Warning(1, "reserved_prefix"), Warning(0, "value_truncated", "n")],
        event_count=3,
    )
    kept = copy.deepcopy(envelope)
    first = plan(envelope)
    assert plan(envelope) == first
    assert plan(Envelope.decode(envelope.encode())) == first  # as the queue delivers it again
    assert envelope == kept


def test_dropped_events_counts_whole_event_drops_once_each() -> None:
    planned = plan(
        env(
            act(0, "A"),
            act(3, "D"),
            warnings=[
                Warning(0, "value_truncated", "note"),  # kept event: not a drop
                Warning(1, "reserved_prefix"),
                Warning(2, "future_dated"),
                Warning(2, "reserved_prefix", "moe_x"),  # same dropped event: counted once
                Warning(3, "invalid_type", "device_id"),
            ],
            event_count=4,
        )
    )
    assert planned.dropped_events == 2
    assert [e.event_id for e in planned.events] == ["req-0", "req-3"]
    assert [(i.index, i.reason, i.attribute) for i in planned.issues] == [
        (0, "value_truncated", "note"),
        (1, "reserved_prefix", None),
        (2, "future_dated", None),
        (2, "reserved_prefix", "moe_x"),
        (3, "invalid_type", "device_id"),
    ]


def test_request_with_every_action_dropped_plans_no_events() -> None:
    planned = plan(
        env(
            customer_id="guest",
            warnings=[Warning(0, "customer_id_disallowed"), Warning(1, "customer_id_disallowed")],
            event_count=2,
        )
    )
    assert (planned.events, planned.schema, planned.dropped_events) == ([], [], 2)
    assert [i.reason for i in planned.issues] == ["customer_id_disallowed"] * 2


def test_schema_observes_each_event_and_the_inferred_type_of_each_attribute() -> None:
    planned = plan(
        env(
            act(
                0,
                "Bought",
                attributes={
                    "gift": True,
                    "price": 3,
                    "when": "2024-02-26T09:24:13Z",
                    "not_a_date": "2024-02-30T00:00:00Z",
                    "tags": ["a", "b"],
                    "mixed": [1, "a"],
                    "address": {"city": "Pune"},
                },
            ),
            act(1, "Opened"),
        )
    )
    assert planned.schema == [
        ("Bought", "", "event"),
        ("Bought", "gift", "boolean"),
        ("Bought", "price", "number"),
        ("Bought", "when", "datetime"),
        ("Bought", "not_a_date", "string"),
        ("Bought", "tags", "array<string>"),
        ("Bought", "mixed", "array"),
        ("Bought", "address", "object"),
        ("Opened", "", "event"),
    ]


def test_track_user_envelope_plans_attributes_and_no_dropped_events() -> None:
    planned = plan(
        env(
            kind="customer",
            user_attributes={"name": "Ada"},
            update_existing_only=True,
            warnings=[Warning(0, "reserved_name", "id")],
            event_count=1,
        )
    )
    assert (planned.kind, planned.user_attributes, planned.update_existing_only) == (
        "customer",
        {"name": "Ada"},
        True,
    )
    assert (planned.events, planned.schema, planned.dropped_events) == ([], [], 0)
    assert [(i.index, i.reason, i.attribute) for i in planned.issues] == [
        (0, "reserved_name", "id")
    ]


# -- value_type: infer_type, faster --------------------------------------------------------------


def _field(low: int, high: int, width: int) -> st.SearchStrategy[str]:
    """Mostly a zero-padded number around the valid range, sometimes any digits."""
    padded = st.integers(low, high).map(lambda n: str(n).zfill(width))
    return st.one_of(*[padded] * 6, st.text("0123456789", min_size=1, max_size=5))


#: Strings near ISO 8601 dates and date-times: real, impossible and almost-right ones.
iso_like = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}{s}{frac}{zone}",
    _field(0, 9999, 4),
    _field(0, 13, 2),
    _field(0, 32, 2),
    st.sampled_from(["T", "t", " ", "_"]),
    _field(0, 25, 2),
    _field(0, 61, 2),
    st.sampled_from(["", ":00", ":59", ":60", ":5"]),
    st.sampled_from(["", ".1", ",123456789", ".1234567890"]),
    st.sampled_from(["", "Z", "z", "+05:30", "-0800", "+25:00", "-05:60", "+5:30"]),
)
dates = st.builds(
    lambda y, m, d: f"{y}-{m}-{d}", _field(0, 9999, 4), _field(0, 13, 2), _field(0, 32, 2)
)
strings = st.one_of(st.text(max_size=30), iso_like, dates, iso_like.map(lambda v: v[:10]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), strings)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(value=values)
@example(value="2019-03-12T23:59:59+25:00")
@example(value=["2019-03-12", "2020-01-01T00:00:00Z"])
@example(value=[["a"], ["b"]])
@example(value=[])
def test_value_type_is_infer_type(value: Any) -> None:
    assert value_type(value) == infer_type(value)


@pytest.mark.parametrize(
    "value",
    [
        "2019-05-21T03:47:35Z",
        "2022-01-22",
        "2019-02-30",
        "2019-03-12".translate({ord("0") + i: 0xFF10 + i for i in range(10)}),  # full-width
        ["sale", "Shoes"],
        [1, 2.5],
        [[1], ["a"]],
        (1, 2),  # not JSON: the reference rules answer
    ],
)
def test_value_type_agrees_on_the_documented_cases(value: Any) -> None:
    assert value_type(value) == infer_type(value)


@given(attributes=st.dictionaries(st.text(max_size=8), values, max_size=6))
@example(attributes={"when": "2024-02-26T09:24:13Z", "again": "2024-02-26T09:24:13Z"})
@example(attributes={"bad": "2024-02-30T00:00:00Z", "sku": "SKU-012345", "short": "2024-01"})
def test_schema_observes_infer_type_of_every_attribute(attributes: dict[str, Any]) -> None:
    planned = plan(env(act(0, "A", attributes=attributes)))
    assert planned.schema == [("A", "", "event")] + [
        ("A", name, infer_type(value)) for name, value in attributes.items()
    ]


def test_date_shaped_strings_are_remembered_within_a_bound() -> None:
    _dated.cache_clear()
    seen = [f"2026-12-03T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z" for n in range(9000)]
    assert {value_type(v) for v in seen} == {"datetime"}
    assert _dated.cache_info().currsize == DATE_MEMO < len(seen)
    for value in ("2019-02-30", "2019-02-28", "2019-02-30"):  # remembered answers stay right
        assert value_type(value) == infer_type(value)
    assert value_type("2019-02-30") == "string"
    assert _dated.cache_info().hits >= 1
