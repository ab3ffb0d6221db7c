"""`POST /v1/event/{workspace_id}`: rows 19-25 of the check table (track-event.md §2), the body's
fields, and Identity Resolution workspaces.

Every expected body is typed out here, so a wrong status, type, message or attribute fails.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.edge.answers import MALFORMED, MISSING, TIME, assert_accepted, assert_rejected, queued
from tests.edge.payloads import DROP, action, body
from tests.harness import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]

OFFSET = "an integer between -54000 and 54000"


# Rows 19-25: the body's fields ------------------------------------------------------------------

ROWS_19_TO_25 = [
    # row 19
    pytest.param(
        body(customer_id=DROP), "customer_id is not found in the payload", MISSING, "customer_id",
        id="19 customer_id missing",
    ),
    pytest.param(
        body(customer_id=None), "customer_id is not found in the payload", MISSING, "customer_id",
        id="19 customer_id null",
    ),
    pytest.param(
        body(customer_id=DROP, user_identifiers={"moe_mobile": "+15550100"}),
        "customer_id is not found in the payload", MISSING, "customer_id",
        id="19 identifiers outside an Identity Resolution workspace",
    ),
    # row 20
    pytest.param(
        body(customer_id=""), "customer_id can not be empty Unicode String", MISSING, "customer_id",
        id="20 customer_id empty",
    ),
    *[
        pytest.param(
            body(customer_id=value),
            "customer_id is expected to be String or Unicode String.", MISSING, "customer_id",
            id=f"20 customer_id {label}",
        )
        for label, value in [
            ("float", 12.5), ("true", True), ("object", {"id": "1"}), ("array", ["123"])
        ]
    ],
    # row 21
    pytest.param(
        body(actions=DROP), "actions is not found in the payload", MISSING, "actions",
        id="21 actions missing",
    ),
    pytest.param(
        body(actions=None), "actions is not found in the payload", MISSING, "actions",
        id="21 actions null",
    ),
    *[
        pytest.param(
            body(actions=value), "actions is expected to be Array", MISSING, "actions",
            id=f"21 actions {label}",
        )
        for label, value in [("object", {"action": "x"}), ("string", "x"), ("number", 3)]
    ],
    pytest.param(
        body(actions=[]), "actions can not be empty Array", MISSING, "actions",
        id="21 actions empty",
    ),
    # row 22
    *[
        pytest.param(
            body(actions=[action(), value]), MALFORMED, "Malformed JSON", "actions",
            id=f"22 action element {label}",
        )
        for label, value in [("string", "Purchased"), ("number", 1), ("null", None), ("array", [])]
    ],
    # row 23
    pytest.param(
        body(actions=[action(action=DROP)]), "action is not found in the payload", MISSING,
        "action", id="23 action missing",
    ),
    pytest.param(
        body(actions=[action(action=None)]), "action is not found in the payload", MISSING,
        "action", id="23 action null",
    ),
    *[
        pytest.param(
            body(actions=[action(action=value)]), MALFORMED, "Malformed JSON", "action",
            id=f"23 action {label}",
        )
        for label, value in [("number", 7), ("true", True), ("object", {"name": "x"})]
    ],
    pytest.param(
        body(actions=[action(action="")]), "action cannot be empty Unicode string", MISSING,
        "action", id="23 action empty",
    ),
    # row 24
    *[
        pytest.param(
            body(actions=[action(attributes=value)]), "attributes is expected to be JSON Object",
            MISSING, "attributes", id=f"24 attributes {label}",
        )
        for label, value in [
            ("string", "x"), ("array", [{"a": 1}]), ("number", 1), ("false", False)
        ]
    ],
    # row 25
    *[
        pytest.param(
            body(actions=[action(**{field: value})]), f"{field} is expected to be {TIME}",
            MISSING, field, id=f"25 {field} {label}",
        )
        for field in ("user_time", "current_time")
        for label, value in [
            ("words", "yesterday"),
            ("negative", -1708939453),
            ("negative string", "-1708939453"),
            ("true", True),
            ("object", {"t": 1}),
            ("impossible date", "2024-02-30T10:00:00Z"),
            ("date only", "2024-02-26"),
            ("bad offset", "2024-02-26T10:00:00+25:00"),
            ("after year 9999", 10**18),
        ]
    ],
    *[
        pytest.param(
            body(actions=[action(user_timezone_offset=value)]),
            f"user_timezone_offset is expected to be {OFFSET}", MISSING, "user_timezone_offset",
            id=f"25 user_timezone_offset {label}",
        )
        for label, value in [
            ("above range", 54001),
            ("below range", -54001),
            ("string", "19800"),
            ("float", 1.5),
            ("true", True),
        ]
    ],
]  # fmt: skip


@pytest.mark.parametrize(("payload", "message", "type_", "attribute"), ROWS_19_TO_25)
async def test_invalid_body_field_is_rejected_with_400_naming_it(
    harness: Harness, payload: dict[str, Any], message: str, type_: str, attribute: str
) -> None:
    response = await harness.post(payload)
    await assert_rejected(harness, response, 400, message, type_, attribute)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"customer_id": 123}, id="integer customer_id"),
        pytest.param({"actions": [action(attributes=None)]}, id="null attributes"),
        pytest.param({"actions": [action(attributes=DROP)]}, id="no attributes"),
        pytest.param({"actions": [action(user_timezone_offset=54000)]}, id="offset 54000"),
        pytest.param({"actions": [action(user_timezone_offset=-54000)]}, id="offset -54000"),
    ],
)
async def test_edge_values_of_body_fields_are_accepted(
    harness: Harness, changes: dict[str, Any]
) -> None:
    response = await harness.post(body(**changes))
    await assert_accepted(harness, response)


async def test_integer_customer_id_is_queued_as_a_string(harness: Harness) -> None:
    response = await harness.post(body(customer_id=123))
    await assert_accepted(harness, response)
    [envelope] = await queued(harness)
    assert (envelope.customer_id, envelope.device_id) == ("123", "123")


# Identity Resolution ----------------------------------------------------------------------------


@pytest.fixture
async def identity(harness: Harness) -> tuple[str, str]:
    return await harness.create_workspace(workspace_id="IR", identity_resolution=("moe_mobile",))


async def test_identity_resolution_workspace_accepts_identifiers_without_customer_id(
    harness: Harness, identity: tuple[str, str]
) -> None:
    payload = body(customer_id=DROP, user_identifiers={"moe_mobile": "+15550100", "other": "x"})
    response = await harness.post(payload, workspace_id="IR", headers=harness.headers(*identity))
    await assert_accepted(harness, response)
    [envelope] = await queued(harness)
    assert envelope.customer_id is None
    assert envelope.device_id is None
    assert envelope.user_identifiers == {"moe_mobile": "+15550100"}
    assert [a.action for a in envelope.actions] == ["ProductAdded"]


async def test_identity_resolution_workspace_keeps_customer_id_with_identifiers(
    harness: Harness, identity: tuple[str, str]
) -> None:
    payload = body(customer_id="u-1", user_identifiers={"moe_mobile": 15550100})
    response = await harness.post(payload, workspace_id="IR", headers=harness.headers(*identity))
    await assert_accepted(harness, response)
    [envelope] = await queued(harness)
    assert (envelope.customer_id, envelope.user_identifiers) == ("u-1", {"moe_mobile": "15550100"})


@pytest.mark.parametrize(
    "identifiers",
    [
        pytest.param({"moe_mobile": "   "}, id="blank"),
        pytest.param({"moe_mobile": ""}, id="empty"),
        pytest.param({"moe_mobile": None}, id="null"),
        pytest.param({"moe_mobile": True}, id="boolean"),
        pytest.param({"email": "a@example.com"}, id="unknown identifier"),
        pytest.param({}, id="none"),
        pytest.param(["+15550100"], id="not an object"),
    ],
)
async def test_identity_resolution_workspace_rejects_unusable_identifiers_with_400(
    harness: Harness, identity: tuple[str, str], identifiers: Any
) -> None:
    payload = body(customer_id=DROP, user_identifiers=identifiers)
    response = await harness.post(payload, workspace_id="IR", headers=harness.headers(*identity))
    await assert_rejected(
        harness, response, 400, "customer_id is not found in the payload", MISSING, "customer_id"
    )
