"""Bulk Import, `POST /v1/transition/{ws}` and `POST /v1/transition?app_id={ws}` (data-api.md
§2, REF §6.2): every whole-request check with status and exact body (REF's leading apostrophes
included), an invalid element dropped as a warning carrying its own endpoint's 400, both rate
limits (users and events) charged together, the elements applied in order through the read
API; any JSON body is fuzzed in tests/edge/test_v1_fuzz.py."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.edge.answers import AUTH, MALFORMED, MISSING, failure, queued, success
from tests.edge.payloads import CUSTOMER, DEVICE, EVENT
from tests.factories import basic
from tests.harness import Harness
from trackd.models import Kind

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


def bulk(*elements: Any) -> dict[str, Any]:
    return {"type": "transition", "elements": list(elements)}


async def post_bulk(
    harness: Harness,
    payload: Any = None,
    *,
    path: str = "/v1/transition/WS1",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    return await harness.client.post(
        path,
        params=params,
        json=payload if content is None else None,
        content=content,
        headers=harness.headers() if headers is None else headers,
    )


async def test_a_valid_bulk_is_queued_as_one_envelope_of_its_elements(harness: Harness) -> None:
    response = await post_bulk(harness, bulk(CUSTOMER, EVENT, DEVICE))
    assert response.status_code == 200
    assert response.json() == success(response)
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "60000",
        "59998",
    )  # the users bucket's: a customer and a device element
    [envelope] = await queued(harness)
    assert (envelope.kind, envelope.event_count) == (Kind.BULK, 2)
    assert [(e.kind, e.customer_id, len(e.actions)) for e in envelope.elements] == [
        (Kind.CUSTOMER, "u1", 0),
        (Kind.EVENT, "u1", 2),
        (Kind.DEVICE, "u1", 0),
    ]
    assert {e.request_id for e in envelope.elements} == {response.headers["x-request-id"]}
    assert harness.app.counters.accepted_events == 2


async def test_the_app_id_query_form_is_the_same_endpoint(harness: Harness) -> None:
    response = await post_bulk(harness, bulk(CUSTOMER), path="/v1/transition",
                               params={"app_id": "WS1"})  # fmt: skip
    assert response.status_code == 200
    assert response.json() == success(response)
    missing = await post_bulk(harness, bulk(CUSTOMER), path="/v1/transition")
    assert missing.status_code == 400
    assert missing.json() == failure(
        missing, "app_id is required in path/query params.", "ParamsRequired"
    )
    other = await post_bulk(harness, bulk(CUSTOMER), path="/v1/transition",
                            params={"app_id": "WS2"})  # fmt: skip
    assert other.status_code == 409
    assert other.json() == failure(
        other, "App key mismatch in params and authentication", "Authentication Mismatch"
    )
    assert len(await queued(harness)) == 1


ELEMENT_TYPE = "'type in elements should be customer/event/device"


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ("transition", "A valid JSON document is required.", "Body type is not JSON", None),
        ({"elements": [CUSTOMER]}, "type is not found in the payload", MISSING, "type"),
        ({**bulk(CUSTOMER), "type": "Transition"}, "type should be transition", "AttributeError",
         "type"),
        ({"type": "transition"}, "elements is not found in the payload", MISSING, "elements"),
        ({"type": "transition", "elements": None}, "elements is not found in the payload",
         MISSING, "elements"),
        ({"type": "transition", "elements": {"a": 1}}, "elements is expected to be Array",
         MISSING, "elements"),
        (bulk(), "'elements cannot be empty array", MISSING, "elements"),
        (bulk(CUSTOMER, "x"), ELEMENT_TYPE, "AttributeError", "type"),
        (bulk(CUSTOMER, {"customer_id": "u"}), ELEMENT_TYPE, "AttributeError", "type"),
        (bulk({**CUSTOMER, "type": "Customer"}), ELEMENT_TYPE, "AttributeError", "type"),
        (bulk({**CUSTOMER, "type": "transition"}), ELEMENT_TYPE, "AttributeError", "type"),
        (bulk({**CUSTOMER, "type": "merge"}), ELEMENT_TYPE, "AttributeError", "type"),
    ],
)  # fmt: skip
async def test_every_whole_request_check_answers_its_400_and_queues_nothing(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_bulk(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)
    assert await queued(harness) == []


@pytest.mark.parametrize(
    ("content", "status", "message", "type_"),
    [
        (b"", 400, "A valid JSON document is required", "Empty request body"),
        (b"{not json", 400, "'" + MALFORMED, "Malformed JSON"),  # REF §6.2's, with its apostrophe
        (b"x" * 131_073, 413, "Payload size exceeds 128 KB", "PayloadTooLarge"),
    ],
)
async def test_body_level_rows(
    harness: Harness, content: bytes, status: int, message: str, type_: str
) -> None:
    response = await post_bulk(harness, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


@pytest.mark.parametrize(
    ("headers", "status", "message", "type_"),
    [
        ("no-auth", 401, "Authentication Header Required", AUTH),
        ("wrong-key", 401, "App Secret key mismatch. Please login to the dashboard to verify key",
         AUTH),
        ("no-content-type", 400, "The Content-Type Header is required", "Missing header value"),
        ("text-plain", 415, "Content type is not supported", "Unsupported media type"),
    ],
)  # fmt: skip
async def test_shared_checks_answer_as_track_event_does(
    harness: Harness, headers: str, status: int, message: str, type_: str
) -> None:
    good = basic("WS1", harness.key)
    chosen = {
        "no-auth": {"Content-Type": "application/json"},
        "wrong-key": {"Authorization": basic("WS1", "nope"), "Content-Type": "application/json"},
        "no-content-type": {"Authorization": good},
        "text-plain": {"Authorization": good, "Content-Type": "text/plain"},
    }[headers]
    response = await post_bulk(harness, headers=chosen, content=msgspec.json.encode(bulk(EVENT)))
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


async def test_an_invalid_element_is_dropped_with_its_own_endpoints_400_as_a_warning(
    harness: Harness,
) -> None:
    elements = [
        {"type": "customer"},
        {"type": "event", "customer_id": "u1", "actions": []},
        {"type": "device", "customer_id": "u1", "device_id": "d1",
         "attributes": {"platform": "Windows", "push_id": "p"}},
        {"type": "event", "customer_id": "u1", "actions": [{"action": "moe_x"}, {"action": "Ok"}]},
        {"type": "device", "customer_id": "u1", "device_id": "d1", "attributes": {"push_id": "p"}},
        CUSTOMER,
    ]  # fmt: skip
    response = await post_bulk(harness, bulk(*elements))
    assert response.status_code == 200
    assert response.json() == success(
        response,
        [
            {"index": 0, "reason": "invalid_element", "type": "customer",
             "message": "customer_id is not found in the payload"},
            {"index": 1, "reason": "invalid_element", "type": "event",
             "message": "actions can not be empty Array"},
            {"index": 2, "reason": "invalid_element", "type": "device",
             "message": "'platform' is not a valid platform."},
            {"index": 3, "reason": "reserved_prefix"},  # the element's own, at its index
            {"index": 4, "reason": "invalid_element", "type": "device",
             "message": "'platform' is not found in payload"},
        ],
    )  # fmt: skip
    [envelope] = await queued(harness)
    assert [e.kind for e in envelope.elements] == [Kind.EVENT, Kind.CUSTOMER]
    assert envelope.event_count == 2  # the valid event element's actions as sent


async def test_an_all_invalid_bulk_still_gets_its_200(harness: Harness) -> None:
    response = await post_bulk(harness, bulk({"type": "event"}))
    assert response.status_code == 200
    assert response.json() == success(
        response,
        [{"index": 0, "reason": "invalid_element", "type": "event",
          "message": "customer_id is not found in the payload"}],
    )  # fmt: skip


async def set_limits(harness: Harness, **limits: int) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, **limits))
    await harness.app.registry.reload()


async def test_users_and_events_have_their_own_limits_charged_all_or_nothing(
    harness: Harness,
) -> None:
    await set_limits(harness, bulk_user_rate_limit=3, bulk_event_rate_limit=4)
    first = await post_bulk(harness, bulk(CUSTOMER, EVENT))  # 1 user, 2 events
    assert (first.status_code, first.headers["x-ratelimit-remaining"]) == (200, "2")
    too_many_events = await post_bulk(harness, bulk(CUSTOMER, EVENT, EVENT))  # 1 user, 4 events
    assert too_many_events.status_code == 429
    assert too_many_events.json() == failure(
        too_many_events, "Rate limits for customers exceeded. Please Try After Some Time",
        "Rate Limits Exceeded",
    )  # fmt: skip
    assert too_many_events.headers["x-ratelimit-limit"] == "4"  # the refusing bucket's
    # its user was refunded: two users still fit, then the third is over
    second = await post_bulk(harness, bulk(CUSTOMER, DEVICE))
    assert (second.status_code, second.headers["x-ratelimit-remaining"]) == (200, "0")
    over = await post_bulk(harness, bulk(CUSTOMER))
    assert (over.status_code, over.headers["x-ratelimit-limit"]) == (429, "3")
    assert len(await queued(harness)) == 2
    single = await harness.post(
        {"type": "event", "customer_id": "u1", "actions": [{"action": "Opened"}]}
    )  # Track Event's budget is another
    assert (single.status_code, single.headers["x-ratelimit-limit"]) == (200, "30000")


# -- what it does, through the read API ---------------------------------------------------------


async def read(harness: Harness, path: str) -> Any:
    deadline = time.monotonic() + 10
    while await harness.queue.lag("processor"):
        assert time.monotonic() < deadline, "the processor did not catch up"
        await anyio.sleep(0.02)
    response = await harness.client.get(
        f"/api/workspaces/WS1/{path}", headers={"Authorization": basic("WS1", harness.key)}
    )
    return response.status_code, response.json()


async def test_elements_apply_in_order_as_their_own_endpoints_would(harness: Harness) -> None:
    early_device = {**DEVICE, "customer_id": "u2"}  # before u2 exists: dropped
    response = await post_bulk(
        harness,
        bulk(early_device, CUSTOMER, EVENT, DEVICE, {**CUSTOMER, "customer_id": "u2"},
             {"type": "event"}),
    )  # fmt: skip
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    status, user = await read(harness, "users/u1")
    assert status == 200
    assert (user["attributes"], user["event_count"]) == ({"plan": "gold"}, 2)
    assert [(d["device_id"], d.get("push_id"), d.get("model")) for d in user["devices"]] == [
        ("d1", "p1", "iPhone"),
        ("u1", None, None),
    ]
    status, other = await read(harness, "users/u2")
    assert (status, other["devices"]) == (200, [])
    _, page = await read(harness, "events?customer_id=u1")
    assert [(e["event_id"], e["action"]) for e in page["events"]] == [
        (f"{request_id}-2-1", "Paid"),
        (f"{request_id}-2-0", "Opened"),
    ]
    _, issues = await read(harness, "issues")
    assert [(i["index"], i["reason"], i["attribute"]) for i in issues["issues"]] == [
        (5, "invalid_element", None),
        (0, "unknown_user", "customer_id"),
    ]
