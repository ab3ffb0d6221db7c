"""`trackd.processor.steps`: one step per envelope kind, and what each does to profiles."""

from __future__ import annotations

from typing import Any

from trackd.models import Action, Envelope, Kind, Plan
from trackd.processor.plan import plan
from trackd.processor.profiles import ProfileView
from trackd.processor.steps import STEPS
from trackd.store.records import Profile, ProfileWrite

T = 1_700_000_000_000
RECEIVED = T + 60_000
USER = ("WS1", "123")
STORED = Profile({"plan": "free"}, {"email": "a@x"}, T - 5_000, T - 1_000)


def act(index: int, at: int) -> Action:
    return Action(
        index=index,
        action="Opened",
        attributes={},
        current_time=at,
        user_time=at,
        user_timezone_offset=0,
    )


def event(*times: int, **fields: Any) -> Plan:
    values: dict[str, Any] = {
        "request_id": "r1",
        "workspace_id": "WS1",
        "received_at": RECEIVED,
        "customer_id": "123",
        "device_id": None,
        "actions": [act(i, at) for i, at in enumerate(times)],
    }
    values.update(fields)
    return plan(Envelope(**values))


def track_user(attributes: dict[str, Any] | None, **fields: Any) -> Plan:
    return event(kind=Kind.CUSTOMER, user_attributes=attributes, **fields)


def run(view: ProfileView, *plans: Plan) -> list[ProfileWrite]:
    for p in plans:
        STEPS[p.kind].run(view, p)
    return view.writes()


def test_every_kind_of_envelope_has_a_step() -> None:
    assert set(STEPS) == set(Kind)


def test_a_plain_event_reads_no_profile_and_writes_none() -> None:
    plain = event(T)
    assert STEPS[Kind.EVENT].reads(plain) == ()
    view = ProfileView({})
    assert run(view, plain) == []
    assert view.has_events(USER)  # its user exists from here on (the rollup makes the row)


def test_an_event_with_identifiers_remembers_them_on_a_profile_spanning_its_events() -> None:
    identified = event(T + 3, T + 1, user_identifiers={"mobile": "+1"})
    assert STEPS[Kind.EVENT].reads(identified) == (USER,)
    assert run(ProfileView({}), identified) == [
        ProfileWrite("WS1", "123", Profile({}, {"mobile": "+1"}, T + 1, T + 3))
    ]
    assert run(ProfileView({USER: STORED}), identified) == [
        ProfileWrite(
            "WS1",
            "123",
            Profile({"plan": "free"}, {"email": "a@x", "mobile": "+1"}, T - 5_000, T + 3),
        )
    ]


def test_track_user_makes_or_merges_the_profile_seen_at_receipt() -> None:
    update = track_user({"plan": "pro", "age": 36})
    assert STEPS[Kind.CUSTOMER].reads(update) == (USER,)
    assert run(ProfileView({}), update) == [
        ProfileWrite("WS1", "123", Profile({"plan": "pro", "age": 36}, {}, RECEIVED, RECEIVED))
    ]
    assert run(ProfileView({USER: STORED}), update) == [
        ProfileWrite(
            "WS1", "123", Profile({"plan": "pro", "age": 36}, {"email": "a@x"}, T - 5_000, RECEIVED)
        )
    ]


def test_track_user_with_a_disallowed_customer_id_reads_and_writes_nothing() -> None:
    blocked = track_user(None)
    assert STEPS[Kind.CUSTOMER].reads(blocked) == ()
    assert run(ProfileView({}), blocked) == []


def test_update_existing_only_merges_attributes_into_a_stored_profile_only() -> None:
    update = track_user({"plan": "pro"}, update_existing_only=True)
    assert run(ProfileView({}), update) == []
    assert run(ProfileView({USER: STORED}), update) == [
        ProfileWrite("WS1", "123", Profile({"plan": "pro"}, {"email": "a@x"}, T - 5_000, T - 1_000))
    ]


def test_update_existing_only_after_the_users_first_event_in_the_batch_makes_the_profile() -> None:
    update = track_user({"plan": "pro"}, update_existing_only=True)
    assert run(ProfileView({}), update, event(T)) == []  # before: nothing to update
    assert run(ProfileView({}), event(T), update) == [
        ProfileWrite("WS1", "123", Profile({"plan": "pro"}, {}, RECEIVED, RECEIVED))
    ]


def test_steps_see_what_the_plans_before_them_left() -> None:
    assert run(
        ProfileView({}),
        track_user({"plan": "free", "address": {"city": "Oslo"}}),
        track_user({"address": {"zip": "0150"}}, update_existing_only=True),
        event(T, user_identifiers={"email": "a@x"}),
    ) == [
        ProfileWrite(
            "WS1",
            "123",
            Profile(
                {"plan": "free", "address": {"city": "Oslo", "zip": "0150"}},
                {"email": "a@x"},
                RECEIVED,
                RECEIVED,
            ),
        )
    ]
