"""`trackd.processor.identity`: Identity Resolution over the owners a store returns."""

from __future__ import annotations

from typing import Any

from trackd.models import Envelope, Plan
from trackd.processor.identity import keys, new_customer_id, resolve
from trackd.processor.plan import plan
from trackd.store.records import IdentifierRow


def planned(request_id: str, customer_id: str | None, **identifiers: str) -> Plan:
    values: dict[str, Any] = {
        "request_id": request_id,
        "workspace_id": "WS1",
        "received_at": 1_700_000_000_000,
        "customer_id": customer_id,
        "device_id": None,
        "actions": [],
        "user_identifiers": identifiers or None,
    }
    return plan(Envelope(**values))


def customers(plans: list[Plan]) -> list[str | None]:
    return [p.customer_id for p in plans]


def test_a_new_users_customer_id_is_its_first_identifiers_name_and_value() -> None:
    assert new_customer_id("email", "ada@example.com") == "email:ada@example.com"
    resolved, added = resolve([planned("r1", None, email="a@x", mobile="+1")], {})
    assert customers(resolved) == ["email:a@x"]
    assert added == [
        IdentifierRow("WS1", "email", "a@x", "email:a@x"),
        IdentifierRow("WS1", "mobile", "+1", "email:a@x"),
    ]


def test_the_first_known_identifier_in_the_order_sent_names_the_customer() -> None:
    owners = {("WS1", "mobile", "+1"): "c-mobile", ("WS1", "email", "a@x"): "c-email"}
    resolved, added = resolve([planned("r1", None, push="p1", mobile="+1", email="a@x")], owners)
    assert customers(resolved) == ["c-mobile"]
    assert added == [IdentifierRow("WS1", "push", "p1", "c-mobile")]  # known ones keep theirs


def test_a_customer_id_sent_wins_and_its_identifiers_name_it() -> None:
    owners = {("WS1", "email", "a@x"): "someone-else"}
    resolved, added = resolve([planned("r1", "c-9", email="a@x", mobile="+1")], owners)
    assert customers(resolved) == ["c-9"]
    assert added == [IdentifierRow("WS1", "mobile", "+1", "c-9")]


def test_identifiers_named_by_a_plan_resolve_the_later_plans_of_the_same_batch() -> None:
    resolved, added = resolve(
        [
            planned("r1", None, email="a@x"),
            planned("r2", None, mobile="+1", email="a@x"),
            planned("r3", None, mobile="+1"),
        ],
        {},
    )
    assert customers(resolved) == ["email:a@x"] * 3
    assert added == [
        IdentifierRow("WS1", "email", "a@x", "email:a@x"),
        IdentifierRow("WS1", "mobile", "+1", "email:a@x"),
    ]


def test_identifiers_resolve_within_their_workspace_only() -> None:
    other = plan(
        Envelope(
            request_id="r2",
            workspace_id="WS2",
            received_at=0,
            customer_id=None,
            device_id=None,
            actions=[],
            user_identifiers={"email": "a@x"},
        )
    )
    resolved, _ = resolve([planned("r1", "c-9", email="a@x"), other], {})
    assert customers(resolved) == ["c-9", "email:a@x"]


def test_plans_without_identifiers_pass_unchanged_and_look_nothing_up() -> None:
    plain = planned("r1", "c-1")
    resolved, added = resolve([plain], {})
    assert resolved[0] is plain
    assert (keys([plain]), added) == ([], [])


def test_keys_are_every_identifier_value_of_the_batch_once_in_order() -> None:
    batch = [
        planned("r1", None, email="a@x", mobile="+1"),
        planned("r2", "c-1"),
        planned("r3", None, mobile="+1", push="p"),
    ]
    assert keys(batch) == [
        ("WS1", "email", "a@x"),
        ("WS1", "mobile", "+1"),
        ("WS1", "push", "p"),
    ]
