"""`trackd.wire.bulk.validate_bulk` (data-api.md §2): whole-request checks, elements validated
by their own endpoints' validators, invalid ones as warnings, the costs it reports."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tests.wire.events import PLAIN
from trackd.errors import ContractError
from trackd.models import Kind, Warning
from trackd.wire.bulk import BulkImportBody, validate_bulk
from trackd.wire.customer import validate_customer
from trackd.wire.device import validate_device
from trackd.wire.event import validate_event

CUSTOMER = {"type": "customer", "customer_id": "u", "attributes": {"a": 1, "id": 2}}
EVENT = {"type": "event", "customer_id": "u", "actions": [{"action": "A"}, {"action": "B"}]}
DEVICE = {"type": "device", "customer_id": "u", "device_id": "d",
          "attributes": {"platform": "web", "push_id": "p"}}  # fmt: skip


def test_elements_validate_exactly_as_their_own_endpoints_do() -> None:
    validated = validate_bulk(
        {"type": "transition", "elements": [CUSTOMER, EVENT, DEVICE]}, PLAIN, None, 5
    )
    assert validated.elements == [
        (Kind.CUSTOMER, validate_customer(CUSTOMER, PLAIN, None, 5)),
        (Kind.EVENT, validate_event(EVENT, PLAIN, None, 5)),
        (Kind.DEVICE, validate_device(DEVICE, PLAIN, None, 5)),
    ]
    assert (validated.users, validated.event_count) == (2, 2)
    assert validated.warnings == [Warning(0, "reserved_name", "id")]  # the customer element's


def test_an_invalid_element_is_a_warning_and_costs_nothing() -> None:
    bad_event = {"type": "event", "customer_id": "u", "actions": "x"}
    validated = validate_bulk({"type": "transition", "elements": [bad_event, DEVICE]}, PLAIN,
                              None, 0)  # fmt: skip
    assert validated.warnings == [
        Warning(0, "invalid_element", type="event", message="actions is expected to be Array")
    ]
    assert [kind for kind, _ in validated.elements or []] == [Kind.DEVICE]
    assert (validated.users, validated.event_count) == (1, 0)
    assert msgspec.json.encode(validated.warnings[0]) == (
        b'{"index":0,"reason":"invalid_element","type":"event",'
        b'"message":"actions is expected to be Array"}'
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"type": "transition", "elements": []}, "'elements cannot be empty array"),
        ({"type": "transition", "elements": [1]},
         "'type in elements should be customer/event/device"),
        ({"type": "transition", "elements": [EVENT, {"type": None}]},
         "'type in elements should be customer/event/device"),
    ],
)  # fmt: skip
def test_whole_request_messages_keep_refs_leading_apostrophe(payload: Any, message: str) -> None:
    with pytest.raises(ContractError) as caught:
        validate_bulk(payload, PLAIN, None, 0)
    assert caught.value.message == message


def test_the_documented_body_type_decodes_every_element_kind() -> None:
    decoded = msgspec.convert({"type": "transition", "elements": [CUSTOMER, EVENT, DEVICE]},
                              BulkImportBody)  # fmt: skip
    assert [type(e).__name__ for e in decoded.elements] == [
        "TrackUserBody", "TrackEventBody", "TrackDeviceBody"
    ]  # fmt: skip


def test_a_portfolio_workspace_needs_its_project_code_once_for_the_whole_request() -> None:
    from tests.wire.events import PORTFOLIO

    payload = {"type": "transition", "elements": [CUSTOMER, DEVICE]}
    with pytest.raises(ContractError) as caught:
        validate_bulk(payload, PORTFOLIO, None, 0)
    assert (caught.value.message, caught.value.attribute) == (
        "project_code is required for this workspace",
        "project_code",
    )
    validated = validate_bulk(payload, PORTFOLIO, "P1", 0)
    assert [kind for kind, _ in validated.elements or []] == [Kind.CUSTOMER, Kind.DEVICE]
