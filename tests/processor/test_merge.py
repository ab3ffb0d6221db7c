"""`trackd.processor.merge` and the merge rules of `identity` and `apply`: which pairs apply,
what the retained profile becomes, Identity Resolution ties and the 50-user cap, and (with
Hypothesis) that any sequence of events and merges leaves every event on exactly one live
profile with the event counts conserved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackd.models import Action, Envelope, Kind, MergePair, Plan
from trackd.processor import merge as merge_rules
from trackd.processor.apply import apply
from trackd.processor.identity import first_tie, normalise
from trackd.processor.merge import combined, merges_of
from trackd.processor.plan import plan
from trackd.store import open_event_store
from trackd.store.base import EventQuery, EventStore
from trackd.store.records import Profile

T = 1_700_000_000_000


def event(request_id: str, customer_id: str | None, at: int = T, **fields: Any) -> Plan:
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": T,
        "customer_id": customer_id,
        "device_id": None,
        "actions": [
            Action(
                index=0,
                action="Opened",
                attributes={},
                current_time=at,
                user_time=at,
                user_timezone_offset=0,
            )
        ],
        "event_count": 1,
    }
    values.update(fields)
    return plan(Envelope(**values))


def merge(request_id: str, *pairs: tuple[str, str]) -> Plan:
    return plan(
        Envelope(
            request_id=request_id,
            workspace_id="WS1",
            received_at=T,
            customer_id=None,
            device_id=None,
            actions=[],
            kind=Kind.MERGE,
            merges=[MergePair(m, r) for m, r in pairs],
        )
    )


# -- the rules, pure ----------------------------------------------------------------------------


def test_the_retained_profile_keeps_its_attributes_and_gains_the_merged_ones_it_lacks() -> None:
    retained = Profile({"plan": "pro", "a": {"x": 1}}, {"email": "r@x"}, T, T + 5)
    merged = Profile(
        {"plan": "free", "name": "Ada", "a": {"y": 2}}, {"email": "m@x", "m": "1"}, 1, 2
    )
    assert combined(retained, merged) == Profile(
        {"plan": "pro", "a": {"x": 1}, "name": "Ada"}, {"email": "r@x", "m": "1"}, 1, T + 5
    )


def test_pairs_see_the_pairs_before_them_through_aliases() -> None:
    profiles = {c: Profile({}, {}, T, T) for c in ("a", "b", "c")}
    writes, issues = merges_of(
        merge("g"),
        [("a", "b", None), ("a", "c", None), ("b", "a", None), ("x", "c", None)],
        {},
        profiles,
    )
    assert [(w.merged, w.retained) for w in writes] == [("a", "b"), ("b", "c")]
    assert [(i.index, i.reason, i.attribute) for i in issues] == [
        (2, "merge_cycle", "merged_user"),
        (3, "merge_unknown_user", "merged_user"),
    ]
    assert [e.event_id for e in writes[1].events] == ["g-m1", "g-r1"]
    assert [e.action for e in writes[1].events] == ["MOE_USER_MERGE_EVENT", "MOE_USER_MERGED"]


def test_a_user_merged_into_itself_is_a_cycle() -> None:
    _, issues = merges_of(merge("g"), [("a", "a", None)], {}, {"a": Profile({}, {}, T, T)})
    assert [(i.reason, i.attribute) for i in issues] == [("merge_cycle", "merged_user")]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("email", "  Ada@Example.COM ", "ada@example.com"),
        ("u_em", "ADA@X.IO", "ada@x.io"),
        ("work_email", "Straße@X.de", "strasse@x.de"),
        ("mobile", "+1 (555) 010-0100", "+15550100100"),
        ("moe_mobile", " 555.0100 ", "5550100"),
        ("phone", "call me", "call me"),
        ("u_mb", "+44 20 7946 0958", "+442079460958"),
        ("loyalty", "  AbC-12 ", "AbC-12"),
    ],
)
def test_identifier_values_are_normalised_in_one_place(
    name: str, value: str, expected: str
) -> None:
    assert normalise(name, value) == expected
    planned = event("r1", None, user_identifiers={name: value})
    assert planned.identifiers == {name: expected}


def test_a_plan_ties_its_customer_to_the_others_its_identifiers_name() -> None:
    owners = {("WS1", "email", "a@x"): "c-email", ("WS1", "mobile", "+1"): "c-mobile"}
    plans = [
        event("r1", None, user_identifiers={"email": "a@x"}),
        event("r2", None, user_identifiers={"push": "p", "mobile": "+1", "email": "a@x"}),
    ]
    tie = first_tie(plans, owners)
    assert tie is not None
    assert (tie.position, tie.customer_id, tie.others) == (
        1,
        "c-mobile",
        [("c-email", ("WS1", "email", "a@x"))],
    )
    assert first_tie(plans[:1], owners) is None
    # within one run: a value named by an earlier plan ties a later one's own customer
    later = first_tie(
        [
            event("r1", "c1", user_identifiers={"email": "b@x"}),
            event("r2", "c2", user_identifiers={"email": "b@x"}),
        ],
        {},
    )
    assert later is not None and (later.position, later.customer_id) == (1, "c2")


# -- applied, on the embedded store -------------------------------------------------------------


async def _opened() -> EventStore:
    store = open_event_store("memory://")
    await store.open()
    return store


def test_at_most_50_users_merge_on_one_identifier_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap, made 3 here: the fourth user naming the value keeps its profile, drops it."""
    monkeypatch.setattr(merge_rules, "MAX_USERS_PER_IDENTIFIER", 3)

    async def scenario() -> None:
        store = await _opened()
        try:
            await apply(store, [event("e0", "c0", T + 100, user_identifiers={"email": "a@x"})])
            for n in range(1, 5):
                await apply(
                    store, [event(f"e{n}", f"c{n}", T + n, user_identifiers={"email": "a@x"})]
                )
            kept = await store.user("WS1", "c0")
            assert kept is not None and kept["aliases"] == ["c1", "c2"]
            for n in (3, 4):
                alone = await store.user("WS1", f"c{n}")
                assert alone is not None
                assert (alone["customer_id"], alone["identifiers"]) == (f"c{n}", {})
            issues = await store.issues("WS1", None)
            assert [(i["request_id"], i["reason"], i["attribute"]) for i in issues] == [
                ("e3", "identifier_merge_limit", "user_identifiers.email"),
                ("e4", "identifier_merge_limit", "user_identifiers.email"),
            ]
        finally:
            await store.aclose()

    asyncio.run(scenario())


CUSTOMERS = ["a", "b", "c", "d", "e"]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("event"), st.sampled_from(CUSTOMERS)),
        st.tuples(
            st.just("merge"),
            st.lists(
                st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(CUSTOMERS)),
                min_size=1,
                max_size=4,
            ),
        ),
        st.tuples(st.just("ir"), st.sampled_from(["x@y", "z@y"]), st.sampled_from(CUSTOMERS)),
    ),
    max_size=14,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, batch=st.integers(min_value=1, max_value=5))
def test_any_sequence_of_merges_leaves_every_event_on_exactly_one_live_profile(
    ops: list[tuple[Any, ...]], batch: int
) -> None:
    plans: list[Plan] = []
    for n, op in enumerate(ops):
        if op[0] == "event":
            plans.append(event(f"r{n}", op[1], T + n))
        elif op[0] == "merge":
            plans.append(merge(f"r{n}", *op[1]))
        else:
            plans.append(event(f"r{n}", op[2], T + n, user_identifiers={"email": op[1]}))
    sent = sum(len(p.events) for p in plans)

    async def scenario() -> None:
        store = await _opened()
        try:
            for start in range(0, len(plans), batch):
                await apply(store, plans[start : start + batch])
            await apply(store, plans)  # redelivered whole: changes nothing
            events, cursor = await store.events(EventQuery(workspace_id="WS1", limit=1000))
            assert cursor is None
            ids = [e["event_id"] for e in events]
            assert len(ids) == len(set(ids))
            merges = sum(1 for e in events if e["action"] == "MOE_USER_MERGED")
            assert len(ids) == sent + 2 * merges
            live: dict[str, int] = {}
            for customer in [*CUSTOMERS, "email:x@y", "email:z@y"]:
                found = await store.user("WS1", customer)
                if found is not None:
                    live[found["customer_id"]] = found["event_count"]
                    assert found["customer_id"] not in found.get("aliases", [])
            for e in events:  # each on a live profile, which counts it
                assert e["customer_id"] in live
            assert sum(live.values()) == len(ids)
            for customer, count in live.items():
                own, _ = await store.events(
                    EventQuery(workspace_id="WS1", customer_id=customer, limit=1000)
                )
                assert len(own) == count
        finally:
            await store.aclose()

    asyncio.run(scenario())
