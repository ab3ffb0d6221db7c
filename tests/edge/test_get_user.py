"""Get User, `POST /v1/customers/export?app_id={ws}` (data-api.md §5, REF §6.7): a synchronous
row, answered from the store and queueing nothing; every body check with its exact 400, REF's
200 shape, its own rate limit (1,000 users a minute, an identifier counting one) with Get User's
429 wording, and read-your-writes (a user made by an accepted request is found at once)."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from tests.edge.answers import MISSING, failure, queued
from tests.factories import SEED_BODY
from tests.harness import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


def body(*identifiers: tuple[Any, Any], fields: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "identifiers": [{"identifier_type": t, "identifier": v} for t, v in identifiers]
    }
    if fields is not None:
        data["user_fields_to_export"] = fields
    return {"data": data}


async def post_export(harness: Harness, payload: Any) -> httpx.Response:
    return await harness.client.post(
        "/v1/customers/export", params={"app_id": "WS1"}, json=payload, headers=harness.headers()
    )


async def test_a_user_made_by_an_accepted_request_is_found_at_once(harness: Harness) -> None:
    user = {"type": "customer", "customer_id": "ada", "attributes": {"plan": "gold", "age": 36}}
    sent = await harness.client.post("/v1/customer/WS1", json=user, headers=harness.headers())
    assert sent.status_code == 200
    before = len(await queued(harness))
    response = await post_export(harness, body(("customer_id", "ada"), ("customer_id", "ghost")))
    assert response.status_code == 200, response.text
    found = response.json()
    [only] = found["data"]["users"]
    attributes = only["user_attributes"]
    assert len(attributes["moengage_id"]) == 24
    assert found == {
        "status": "success",
        "type": "export_users",
        "data": {
            "users_not_found": [{"identifier_type": "customer_id", "identifier": "ghost"}],
            "users": [
                {
                    "user_attributes": {
                        "customer_id": "ada",
                        "moengage_id": attributes["moengage_id"],
                        "plan": "gold",
                        "age": 36,
                        "first_seen": attributes["first_seen"],
                        "last_seen": attributes["last_seen"],
                    }
                }
            ],
        },
    }
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "1000",
        "998",
    )
    assert len(await queued(harness)) == before  # answered, never queued
    by_id = await post_export(
        harness, body(("moengage_id", attributes["moengage_id"]), fields=["plan"])
    )
    assert by_id.json()["data"]["users"] == [
        {"user_attributes": {"customer_id": "ada", "moengage_id": attributes["moengage_id"],
                             "plan": "gold"}}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ({}, "data is not found in the payload", MISSING, "data"),
        ({"data": []}, "data is not found in the payload", MISSING, "data"),
        ({"data": {}}, "identifiers is not found in the payload", MISSING, "identifiers"),
        ({"data": {"identifiers": []}}, "identifiers is not found in the payload", MISSING,
         "identifiers"),
        (body(*[("customer_id", f"u{i}") for i in range(21)]), "max limit allowed is 20",
         "LimitBreached", "users"),
        ({"data": {"identifiers": ["u1"]}},
         "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8.",
         "Malformed JSON", "identifiers"),
        ({"data": {"identifiers": [{"identifier": "u1"}]}},
         "identifier_type is not found in the payload", MISSING, "identifier_type"),
        (body(("email", "u1")), "identifier_type should be customer_id/moengage_id", MISSING,
         "identifier_type"),
        ({"data": {"identifiers": [{"identifier_type": "customer_id"}]}},
         "identifier is not found in the payload", MISSING, "identifier"),
        (body(("customer_id", 7)), "identifier is expected to be String or Unicode String.",
         MISSING, "identifier"),
        (body(("customer_id", "")), "identifier can not be empty Unicode String", MISSING,
         "identifier"),
        (body(("customer_id", "u1"), fields="plan"),
         "user_fields_to_export is expected to be Array", MISSING, "user_fields_to_export"),
    ],
)  # fmt: skip
async def test_every_body_check_answers_its_400(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_export(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)


async def test_twenty_identifiers_are_answered(harness: Harness) -> None:
    response = await post_export(harness, body(*[("customer_id", f"u{i}") for i in range(20)]))
    assert response.status_code == 200
    assert len(response.json()["data"]["users_not_found"]) == 20


async def test_get_user_has_its_own_rate_limit_with_get_users_429(harness: Harness) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, export_rate_limit=2))
    await harness.app.registry.reload()
    assert (await post_export(harness, body(("id", "a"), ("id", "b")))).status_code == 200
    over = await post_export(harness, body(("id", "c")))
    assert over.status_code == 429
    assert over.json() == failure(over, "Rate limit exceeded", "RateLimitError")
    event = await harness.post(SEED_BODY)
    assert (event.status_code, event.headers["x-ratelimit-limit"]) == (200, "30000")
