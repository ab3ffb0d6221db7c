"""Track User, `POST /v1/customer/{workspace_id}` (REF §6.1): the checks it shares with Track
Event, its own rules (type "customer", attributes, MoEngage's `moe_` user attributes, blocked
names, `update_existing_only`, `platforms`), its own rate limit, and the profile it leaves."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.edge.answers import AUTH, MISSING, failure, success
from tests.factories import SEED_BODY, basic, without_moengage_id
from tests.harness import Harness
from trackd import admin
from trackd.wire.times import iso

pytestmark = pytest.mark.anyio

STANDARD = {
    "moe_unsubscribe": False,
    "moe_spam": False,
    "moe_hard_bounce": True,
    "moe_sms_subscription": True,
    "moe_wa_subscription": False,
    "moe_email_optin_status": "opted_in",
    "moe_gaid": "38400000-8cf0-11bd-b23e-10b96e40000d",
}


def user_body(customer_id: Any = "c1", **fields: Any) -> dict[str, Any]:
    return {"type": "customer", "customer_id": customer_id, **fields}


async def post_user(
    harness: Harness,
    body: Any = None,
    *,
    workspace_id: str = "WS1",
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    return await harness.client.post(
        f"/v1/customer/{workspace_id}",
        json=body if content is None else None,
        content=content,
        headers=harness.headers() if headers is None else headers,
    )


async def accepted(harness: Harness, body: dict[str, Any]) -> httpx.Response:
    response = await post_user(harness, body)
    assert response.status_code == 200, response.text
    return response


async def settled(harness: Harness) -> None:
    """Wait until the processor has acknowledged every envelope queued (user updates carry no
    events, so the stats' `lag_events` cannot tell)."""
    deadline = time.monotonic() + 10
    while True:
        if await harness.queue.lag("processor") == 0:
            return
        assert time.monotonic() < deadline, "the processor did not catch up"
        await anyio.sleep(0.02)


async def profile(harness: Harness, customer_id: str) -> httpx.Response:
    await settled(harness)
    return await harness.client.get(
        f"/api/workspaces/WS1/users/{customer_id}",
        headers={"Authorization": basic("WS1", harness.key)},
    )


async def attributes(harness: Harness, customer_id: str) -> dict[str, Any]:
    response = await profile(harness, customer_id)
    assert response.status_code == 200, response.text
    return response.json()["attributes"]


# -- what it shares with Track Event ----------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "message", "type_"),
    [
        ({"Content-Type": "application/json"}, 401, "Authentication Header Required", AUTH),
        (
            {"Authorization": basic("WS1", "nope"), "Content-Type": "application/json"},
            401,
            "App Secret key mismatch. Please login to the dashboard to verify key",
            AUTH,
        ),
        (
            {"Authorization": basic("NOPE", "x"), "Content-Type": "application/json"},
            409,
            "App key mismatch in params and authentication",
            "Authentication Mismatch",
        ),
        (
            {"Authorization": "KEY"},
            400,
            "The Content-Type Header is required",
            "Missing header value",
        ),
        (
            {"Authorization": "KEY", "Content-Type": "text/plain"},
            415,
            "Content type is not supported",
            "Unsupported media type",
        ),
    ],
    ids=["no-authorization", "wrong-key", "other-workspace", "no-content-type", "text-plain"],
)
async def test_request_failing_a_shared_header_check_is_rejected_and_not_queued(
    harness: Harness, headers: dict[str, str], status: int, message: str, type_: str
) -> None:
    if headers.get("Authorization") == "KEY":
        headers = {**headers, "Authorization": basic("WS1", harness.key)}
    content = msgspec.json.encode(user_body())  # bytes: httpx adds no Content-Type of its own
    response = await post_user(harness, headers=headers, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await harness.queued() == []


async def test_unknown_workspace_is_rejected_with_401(harness: Harness) -> None:
    headers = {"Authorization": basic("NOPE", "x"), "Content-Type": "application/json"}
    response = await post_user(harness, user_body(), workspace_id="NOPE", headers=headers)
    assert response.status_code == 401
    assert response.json() == failure(
        response, "Invalid APP_ID used in Authentication Header", AUTH
    )


async def test_suspended_workspace_is_rejected_with_403(harness: Harness) -> None:
    await admin.set_suspended(harness.store, "WS1", True)
    await harness.app.registry.reload()
    response = await post_user(harness, user_body())
    assert response.status_code == 403
    assert response.json() == failure(response, "Account Suspended", "Account Suspended")


async def test_body_over_128_kb_is_rejected_with_413(harness: Harness) -> None:
    body = user_body(attributes={"blob": "x" * 131_072})
    response = await post_user(harness, body)
    assert response.status_code == 413
    assert response.json() == failure(response, "Payload size exceeds 128 KB", "PayloadTooLarge")
    assert await harness.queued() == []


@pytest.mark.parametrize(
    ("content", "message", "type_"),
    [
        (b"", "A valid JSON document is required", "Empty request body"),
        (
            b'{"type": "customer",',
            "Could not decode the request body. The JSON was incorrect or not encoded as UTF-8.",
            "Malformed JSON",
        ),
        (b'[{"type": "customer"}]', "A valid JSON document is required.", "Body type is not JSON"),
    ],
    ids=["empty", "malformed", "array"],
)
async def test_body_that_is_not_a_json_object_is_rejected_with_400(
    harness: Harness, content: bytes, message: str, type_: str
) -> None:
    response = await post_user(harness, content=content)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_)


# -- type, customer_id, attributes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message", "type_"),
    [
        ({"customer_id": "c1"}, "type is not found in the payload", MISSING),
        ({"type": "event", "customer_id": "c1"}, "type should be customer", "AttributeError"),
        ({"type": "Customer", "customer_id": "c1"}, "type should be customer", "AttributeError"),
        ({"type": None, "customer_id": "c1"}, "type should be customer", "AttributeError"),
    ],
    ids=["missing", "event", "capitalised", "null"],
)
async def test_type_must_be_customer(
    harness: Harness, body: dict[str, Any], message: str, type_: str
) -> None:
    response = await post_user(harness, body)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, "type")
    assert await harness.queued() == []


@pytest.mark.parametrize(
    ("customer_id", "message"),
    [
        (None, "customer_id is not found in the payload"),
        ("", "customer_id can not be empty Unicode String"),
        ([1], "customer_id is expected to be String or Unicode String."),
        (True, "customer_id is expected to be String or Unicode String."),
        (1.5, "customer_id is expected to be String or Unicode String."),
        ({"id": 1}, "customer_id is expected to be String or Unicode String."),
    ],
    ids=["null", "empty", "array", "boolean", "float", "object"],
)
async def test_customer_id_must_be_a_non_empty_string_or_integer(
    harness: Harness, customer_id: Any, message: str
) -> None:
    response = await post_user(harness, user_body(customer_id))
    assert response.status_code == 400
    assert response.json() == failure(response, message, MISSING, "customer_id")


async def test_missing_customer_id_is_rejected(harness: Harness) -> None:
    response = await post_user(harness, {"type": "customer", "attributes": {"name": "Ada"}})
    assert response.status_code == 400
    assert response.json() == failure(
        response, "customer_id is not found in the payload", MISSING, "customer_id"
    )


async def test_integer_customer_id_names_the_profile_as_text(harness: Harness) -> None:
    await accepted(harness, user_body(42, attributes={"name": "Ada"}))
    assert await attributes(harness, "42") == {"name": "Ada"}


@pytest.mark.parametrize("value", [[1], "name", 5, True], ids=["array", "string", "int", "bool"])
async def test_attributes_must_be_an_object(harness: Harness, value: Any) -> None:
    response = await post_user(harness, user_body(attributes=value))
    assert response.status_code == 400
    assert response.json() == failure(
        response, "attributes is expected to be JSON Object", MISSING, "attributes"
    )


async def test_track_user_creates_the_profile_with_its_attributes(harness: Harness) -> None:
    before = int(time.time() * 1000)
    response = await accepted(
        harness,
        user_body(
            "c1",
            attributes={"name": "Ada", "age": 36, "vip": True, "tags": ["a"], "email": None},
            unknown_key="ignored",
        ),
    )
    after = int(time.time() * 1000)
    assert response.json() == success(response)
    [envelope] = await harness.queued()
    # a user update is no event: it counts in no event statistics
    assert (envelope.kind, envelope.customer_id, envelope.actions, envelope.event_count) == (
        "customer",
        "c1",
        [],
        0,
    )
    user = (await profile(harness, "c1")).json()
    assert iso(before) <= user["first_seen"] <= iso(after)
    assert without_moengage_id(user) == {
        "customer_id": "c1",
        "attributes": {"name": "Ada", "age": 36, "vip": True, "tags": ["a"]},
        "identifiers": {},
        "first_seen": user["first_seen"],
        "last_seen": user["first_seen"],
        "event_count": 0,
        "devices": [],
    }


async def test_null_attributes_are_accepted_as_none(harness: Harness) -> None:
    response = await accepted(harness, user_body("c1", attributes=None))
    assert response.json() == success(response)
    assert await attributes(harness, "c1") == {}


async def test_later_updates_merge_into_the_profile(harness: Harness) -> None:
    await accepted(harness, user_body("c1", attributes={"name": "Ada", "plan": "free"}))
    await accepted(harness, user_body("c1", attributes={"plan": "pro", "age": 36}))
    assert await attributes(harness, "c1") == {"name": "Ada", "plan": "pro", "age": 36}


# -- names ------------------------------------------------------------------------------------


async def test_moe_names_are_dropped_except_moengages_standard_user_attributes(
    harness: Harness,
) -> None:
    response = await accepted(
        harness,
        user_body(attributes={"name": "Ada", "moe_x": 1, **STANDARD, "MOE_Y": "no"}),
    )
    assert response.json() == success(
        response,
        [
            {"index": 0, "attribute": "moe_x", "reason": "reserved_prefix"},
            {"index": 0, "attribute": "MOE_Y", "reason": "reserved_prefix"},
        ],
    )
    assert await attributes(harness, "c1") == {"name": "Ada", **STANDARD}


async def test_blocked_names_are_dropped_as_reserved_names(harness: Harness) -> None:
    response = await accepted(
        harness, user_body(attributes={"id": 7, "name": "Ada", "_id": "x", "": "empty"})
    )
    assert response.json() == success(
        response,
        [
            {"index": 0, "attribute": "id", "reason": "reserved_name"},
            {"index": 0, "attribute": "_id", "reason": "reserved_name"},
            {"index": 0, "attribute": "", "reason": "reserved_name"},
        ],
    )
    assert await attributes(harness, "c1") == {"name": "Ada"}
    issues = await harness.client.get(
        "/api/workspaces/WS1/issues", headers={"Authorization": "Bearer tok"}
    )
    assert [(i["request_id"], i["attribute"], i["reason"]) for i in issues.json()["issues"]] == [
        (response.json()["request_id"], "id", "reserved_name"),
        (response.json()["request_id"], "_id", "reserved_name"),
        (response.json()["request_id"], "", "reserved_name"),
    ]


async def test_disallowed_customer_id_keeps_no_attributes(harness: Harness) -> None:
    response = await accepted(harness, user_body("Guest", attributes={"name": "Ada"}))
    assert response.json() == success(response, [{"index": 0, "reason": "customer_id_disallowed"}])
    [envelope] = await harness.queued()
    assert envelope.user_attributes is None  # no profile is made for a disallowed id
    assert await harness.app.events.user("WS1", "Guest") is None


async def test_strict_workspace_rejects_a_dropped_attribute(harness: Harness) -> None:
    strict, key = await harness.create_workspace(workspace_id="STRICT", strict=True)
    response = await post_user(
        harness,
        user_body(attributes={"moe_x": 1}),
        workspace_id=strict,
        headers=harness.headers(strict, key),
    )
    assert response.status_code == 400
    assert response.json() == failure(
        response,
        "moe_x uses the reserved prefix moe_ (strict mode: reserved_prefix)",
        "StrictModeViolation",
        "moe_x",
    )


# -- update_existing_only and platforms -------------------------------------------------------


async def test_update_existing_only_does_not_create_a_user(harness: Harness) -> None:
    response = await accepted(
        harness, user_body("new", attributes={"name": "Ada"}, update_existing_only=True)
    )
    assert response.json() == success(response)
    missing = await profile(harness, "new")
    assert missing.status_code == 404


async def test_update_existing_only_updates_an_existing_user(harness: Harness) -> None:
    await harness.post(SEED_BODY)  # customer 123 exists through its event
    await settled(harness)
    await accepted(harness, user_body("123", attributes={"plan": "pro"}, update_existing_only=True))
    user = (await profile(harness, "123")).json()
    assert (user["attributes"], user["event_count"]) == ({"plan": "pro"}, 1)


async def test_platforms_at_the_top_level_are_stored_as_the_platforms_attribute(
    harness: Harness,
) -> None:
    platforms = [{"platform": "ANDROID", "active": "true"}, {"platform": "web", "active": "false"}]
    await accepted(harness, user_body("c1", attributes={"name": "Ada"}, platforms=platforms))
    await accepted(harness, user_body("c2", attributes={"platforms": platforms}))
    await accepted(
        harness,
        user_body("c3", attributes={"platforms": platforms[:1]}, platforms=platforms[1:]),
    )
    assert await attributes(harness, "c1") == {"name": "Ada", "platforms": platforms}
    assert await attributes(harness, "c2") == {"platforms": platforms}
    assert await attributes(harness, "c3") == {"platforms": platforms[:1]}  # inside wins


# -- its own rate limit -----------------------------------------------------------------------


async def test_user_updates_have_their_own_rate_limit_counted_per_request(
    harness: Harness,
) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, user_rate_limit=2))
    await harness.app.registry.reload()

    many = {f"a{i}": i for i in range(60)}
    first = await accepted(harness, user_body("c1", attributes=many))
    second = await accepted(harness, user_body("c2", attributes={"name": "Ada"}))
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        "2",
        "1",
    )
    assert second.headers["x-ratelimit-remaining"] == "0"
    third = await post_user(harness, user_body("c3"))
    assert third.status_code == 429
    assert third.json() == failure(
        third,
        "Rate limits for customers exceeded. Please Try After Some Time",
        "Rate Limits Exceeded",
    )
    assert (third.headers["x-ratelimit-limit"], third.headers["x-ratelimit-remaining"]) == (
        "2",
        "0",
    )
    assert int(third.headers["retry-after"]) >= 1
    event = await harness.post(SEED_BODY)  # the event limit is another budget
    assert event.status_code == 200
    assert event.headers["x-ratelimit-limit"] == "30000"
    assert [e.customer_id for e in await harness.queued()] == ["c1", "c2", "123"]
