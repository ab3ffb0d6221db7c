"""GDPR / CCPA erasure, `POST /v1/opengdpr_requests/{ws}` (data-api.md §6, REF §6.6): every
body check with its exact 400, REF's 200 body, and what it does through the read API: every
matching profile gone with its events and issues, only the audit record (never the values)
left in `GET /api/workspaces/{ws}/erasures`."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest

from tests.edge.answers import MALFORMED, MISSING, failure, queued
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd.models import Erasure, Kind

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]

TYPES = "ID/user_secondary_id/email/mobile/google_advertising_id/advertising_identifier"


def body(*identities: tuple[Any, Any], **extra: Any) -> dict[str, Any]:
    return {
        "request_type": "erasure",
        "submitted_time": "2018-10-05T15:00:00Z",
        "identities": [{"identity_type": t, "identity_value": v} for t, v in identities],
        "api_version": "1.0",
        **extra,
    }


async def post_erasure(harness: Harness, payload: Any) -> httpx.Response:
    return await harness.client.post(
        "/v1/opengdpr_requests/WS1", json=payload, headers=harness.headers()
    )


async def read(harness: Harness, path: str) -> tuple[int, Any]:
    deadline = time.monotonic() + 10
    while await harness.queue.lag("processor"):
        assert time.monotonic() < deadline, "the processor did not catch up"
        await anyio.sleep(0.02)
    response = await harness.client.get(
        f"/api/workspaces/WS1/{path}", headers={"Authorization": basic("WS1", harness.key)}
    )
    return response.status_code, response.json()


async def test_an_erasure_is_queued_and_answered_as_moengage_does(harness: Harness) -> None:
    response = await post_erasure(harness, body(("email", "ada@example.com")))
    assert response.status_code == 200
    assert response.json() == {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": response.headers["x-request-id"],
    }
    [envelope] = await queued(harness)
    assert envelope.kind is Kind.ERASE
    assert envelope.erasure == Erasure(
        identities=[("email", "ada@example.com")], submitted_time="2018-10-05T15:00:00Z"
    )


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ({}, "request_type is not found in the payload", MISSING, "request_type"),
        (body(("ID", "u1"), request_type="portability"), "request_type should be erasure",
         MISSING, "request_type"),
        ({"request_type": "erasure"}, "identities is not found in the payload", MISSING,
         "identities"),
        ({"request_type": "erasure", "identities": []}, "identities is not found in the payload",
         MISSING, "identities"),
        ({"request_type": "erasure", "identities": ["u1"]}, MALFORMED, "Malformed JSON",
         "identities"),
        ({"request_type": "erasure", "identities": [{"identity_value": "u1"}]},
         "identity_type is not found in the payload", MISSING, "identity_type"),
        (body(("phone", "u1")), f"identity_type should be {TYPES}", MISSING, "identity_type"),
        ({"request_type": "erasure", "identities": [{"identity_type": "ID"}]},
         "identity_value is not found in the payload", MISSING, "identity_value"),
        (body(("ID", 5)), "identity_value is expected to be String or Unicode String.", MISSING,
         "identity_value"),
        (body(("ID", "")), "identity_value can not be empty Unicode String", MISSING,
         "identity_value"),
        (body(("ID", "u1"), submitted_time=5),
         "submitted_time is expected to be String or Unicode String.", MISSING, "submitted_time"),
    ],
)  # fmt: skip
async def test_every_body_check_answers_its_400_and_queues_nothing(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_erasure(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)
    assert await queued(harness) == []


async def test_an_erasure_leaves_only_its_audit_record(harness: Harness) -> None:
    sent = await harness.client.post(
        "/v1/customer/WS1",
        json={"type": "customer", "customer_id": "123", "attributes": {"email": "a@example.com"}},
        headers=harness.headers(),
    )
    assert sent.status_code == 200
    strange = {**SEED_BODY, "actions": [{**SEED_BODY["actions"][0], "platform": "Fridge"}]}
    assert (await harness.post(strange)).status_code == 200  # an issue: unknown_platform
    status, issues = await read(harness, "issues")
    assert status == 200 and issues["issues"] != []
    response = await post_erasure(harness, body(("email", "a@example.com")))
    assert response.status_code == 200
    assert (await read(harness, "users/123"))[0] == 404
    assert (await read(harness, "events?customer_id=123"))[1]["events"] == []
    assert (await read(harness, "issues"))[1] == {"issues": []}
    status, listed = await read(harness, "erasures")
    assert status == 200
    [record] = listed["erasures"]
    assert record["request_id"] == response.headers["x-request-id"]
    assert (record["identity_types"], record["users"], record["submitted_time"]) == (
        ["email"],
        1,
        "2018-10-05T15:00:00Z",
    )
    assert record["events"] >= 1
    assert "a@example.com" not in str(listed)
