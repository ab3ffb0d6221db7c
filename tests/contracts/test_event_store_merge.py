"""The EventStore contract for merges (trackd/store/base.py's `Batch.aliases`, `merged_on`,
`merge`, and reads through aliases), run against every adapter: memory, sqlite, postgres.

Plans are built as the processor builds them (`plan` from an `Envelope`) and applied with
`apply`, so what is checked is what the read API would show."""

from __future__ import annotations

from typing import Any

import pytest

from trackd.models import Action, Envelope, Kind, MergePair, Plan
from trackd.processor.apply import apply
from trackd.processor.plan import plan
from trackd.store.base import EventQuery, EventStore
from trackd.store.records import Changes, MergeWrite, Profile, Rollup

pytestmark = pytest.mark.anyio

T = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
RECEIVED = T + 60_000  # 2023-11-14T22:14:20.000Z


def act(index: int, name: str, at: int) -> Action:
    return Action(
        index=index,
        action=name,
        attributes={},
        platform="ANDROID",
        app_version="1.0",
        current_time=at,
        user_time=at,
        user_timezone_offset=0,
    )


def event(request_id: str, customer_id: str | None, *times: int, **fields: Any) -> Plan:
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": RECEIVED,
        "customer_id": customer_id,
        "device_id": None,
        "actions": [act(i, "Opened", at) for i, at in enumerate(times)],
        "client_ip": "198.51.100.7",
        "event_count": len(times),
    }
    values.update(fields)
    return plan(Envelope(**values))


def user(request_id: str, customer_id: str, attributes: dict[str, Any]) -> Plan:
    return event(request_id, customer_id, kind=Kind.CUSTOMER, user_attributes=attributes)


def merge(request_id: str, *pairs: tuple[str, str], received_at: int = RECEIVED + 1) -> Plan:
    return plan(
        Envelope(
            request_id=request_id,
            workspace_id="WS1",
            received_at=received_at,
            customer_id=None,
            device_id=None,
            actions=[],
            kind=Kind.MERGE,
            merges=[MergePair(m, r) for m, r in pairs],
            event_count=len(pairs),
        )
    )


async def events_of(store: EventStore, customer_id: str | None = None) -> list[tuple[str, str]]:
    events, _ = await store.events(
        EventQuery(workspace_id="WS1", customer_id=customer_id, limit=1000)
    )
    return [(e["event_id"], e["customer_id"]) for e in events]


async def profile(store: EventStore, customer_id: str) -> dict[str, Any]:
    found = await store.user("WS1", customer_id)
    assert found is not None, customer_id
    return found


async def test_merge_moves_events_devices_and_attributes_and_leaves_an_alias(
    store: EventStore,
) -> None:
    await apply(
        store,
        [
            event("e1", "m", T + 1_000, device_id="phone"),
            event("e2", "r", T + 5_000),
            user("u1", "m", {"name": "Ada", "plan": "free"}),
            user("u2", "r", {"plan": "pro"}),
        ],
    )
    retained_id = (await profile(store, "r"))["moengage_id"]
    await apply(store, [merge("g1", ("m", "r"))])
    merged = await profile(store, "r")
    assert await profile(store, "m") == merged  # the alias reads as the profile it went into
    assert merged["customer_id"] == "r"
    assert merged["moengage_id"] == retained_id
    assert merged["aliases"] == ["m"]
    assert merged["attributes"] == {"plan": "pro", "name": "Ada"}  # r's kept, m's gained
    assert (merged["first_seen"], merged["last_seen"]) == (
        "2023-11-14T22:13:21.000Z",
        "2023-11-14T22:14:20.000Z",
    )
    assert merged["event_count"] == 4  # e1, e2 and the merge's two
    assert [d["device_id"] for d in merged["devices"]] == ["phone", "r"]
    expected = [("g1-r0", "r"), ("g1-m0", "r"), ("e2-0", "r"), ("e1-0", "r")]
    assert await events_of(store) == expected
    assert await events_of(store, "m") == expected
    assert await events_of(store, "r") == expected
    events, _ = await store.events(EventQuery(workspace_id="WS1", action="MOE_USER_MERGED"))
    assert [(e["attributes"], e["current_time"]) for e in events] == [
        ({"merged_user": "m", "retained_user": "r"}, "2023-11-14T22:14:20.001Z")
    ]
    assert await store.counts("WS1") == {"processed_events": 2}  # the merge's own: not counted


async def test_later_events_and_updates_for_a_merged_id_land_on_the_retained_profile(
    store: EventStore,
) -> None:
    await apply(store, [event("e1", "m", T), event("e2", "r", T + 1)])
    await apply(store, [merge("g1", ("m", "r")), event("e3", "m", T + 2)])
    await apply(store, [user("u1", "m", {"plan": "pro"}), event("e4", "m", T + 3)])
    merged = await profile(store, "r")
    assert (merged["event_count"], merged["attributes"]) == (6, {"plan": "pro"})
    assert [e for e, _ in await events_of(store, "m")] == [
        "e4-0",
        "e3-0",
        "g1-r0",
        "g1-m0",
        "e2-0",
        "e1-0",
    ]


async def test_pairs_apply_in_order_and_unknown_users_and_cycles_are_skipped_with_issues(
    store: EventStore,
) -> None:
    await apply(store, [event("e1", "a", T), event("e2", "b", T), event("e3", "c", T)])
    await apply(
        store,
        [merge("g1", ("a", "b"), ("nobody", "b"), ("b", "a"), ("b", "c"), ("a", "ghost"))],
    )
    merged = await profile(store, "c")
    assert merged["aliases"] == ["a", "b"]
    assert merged["event_count"] == 3 + 4
    assert await store.user("WS1", "nobody") is None
    issues = await store.issues("WS1", None)
    assert [(i["request_id"], i["index"], i["reason"], i["attribute"]) for i in issues] == [
        ("g1", 1, "merge_unknown_user", "merged_user"),
        ("g1", 2, "merge_cycle", "merged_user"),
        ("g1", 4, "merge_unknown_user", "retained_user"),
    ]


async def test_a_redelivered_merge_changes_nothing(store: EventStore) -> None:
    await apply(store, [event("e1", "m", T), event("e2", "r", T)])
    await apply(store, [merge("g1", ("m", "r"))])
    before = await profile(store, "r")
    await apply(store, [merge("g1", ("m", "r")), event("e1", "m", T)])
    assert await profile(store, "r") == before
    assert len(await events_of(store)) == 4


async def test_batch_merge_calls_move_everything_and_read_back_aliases(store: EventStore) -> None:
    """The Batch methods themselves, as the processor calls them."""
    await apply(store, [event("e1", "m", T, user_identifiers=None), event("e2", "r", T + 1)])
    async with store.batch() as batch:
        await batch.claim([merge("g0")])
        assert await batch.aliases([("WS1", "m"), ("WS1", "r")]) == {}
        assert await batch.merged_on([("WS1", "email", "a@x")]) == {}
        await batch.merge(
            [MergeWrite("WS1", "m", "r", Profile({}, {}, T, T + 1), [], ("email", "a@x"))]
        )
        assert await batch.aliases([("WS1", "m"), ("WS1", "r"), ("WS2", "m")]) == {
            ("WS1", "m"): "r"
        }
        assert await batch.merged_on([("WS1", "email", "a@x"), ("WS1", "email", "b")]) == {
            ("WS1", "email", "a@x"): 1
        }
        assert await batch.profiles([("WS1", "m"), ("WS1", "r")]) == {
            ("WS1", "r"): Profile({}, {}, T, T + 1)
        }
        await batch.write(Changes([], [], [], Rollup()))
    merged = await profile(store, "m")
    assert (merged["customer_id"], merged["event_count"], merged["aliases"]) == ("r", 2, ["m"])


async def test_aliases_of_a_profile_merged_again_follow_it(store: EventStore) -> None:
    await apply(store, [event("e1", "a", T), event("e2", "b", T), event("e3", "c", T)])
    await apply(store, [merge("g1", ("a", "b"))])
    await apply(store, [merge("g2", ("b", "c"))])
    assert (await profile(store, "a"))["customer_id"] == "c"
    assert (await profile(store, "c"))["aliases"] == ["a", "b"]
    assert await store.user("WS2", "a") is None


async def test_identity_resolution_ties_merge_into_the_profile_seen_last(
    store: EventStore,
) -> None:
    await apply(
        store,
        [
            event("e1", None, T + 9_000, user_identifiers={"email": "A@X.io "}),
            event("e2", None, T, user_identifiers={"mobile": "+1 555 0100"}),
        ],
    )
    assert (await profile(store, "email:a@x.io"))["identifiers"] == {"email": "a@x.io"}
    # one request names both: they merge, into the one seen last (the email's)
    await apply(
        store,
        [
            event("e3", None, T + 1, user_identifiers={"mobile": "+15550100", "email": "a@x.io"}),
            event("e4", None, T + 2, user_identifiers={"mobile": "+1-555-0100"}),
        ],
    )
    merged = await profile(store, "email:a@x.io")
    assert merged["aliases"] == ["mobile:+15550100"]
    assert merged["identifiers"] == {"email": "a@x.io", "mobile": "+15550100"}
    assert merged["event_count"] == 4 + 2
    events, _ = await store.events(EventQuery(workspace_id="WS1", action="MOE_USER_MERGE_EVENT"))
    assert [e["attributes"] for e in events] == [
        {"merged_user": "mobile:+15550100", "retained_user": "email:a@x.io", "identifier": "email"}
    ]
    assert [e for e, _ in await events_of(store, "mobile:+15550100")][:1] == ["e4-0"]
