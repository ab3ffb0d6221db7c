"""Track Device, `POST /v1/device/{ws}` and `POST /v1/device?app_id={ws}` (data-api.md §1, REF
§6.3): every row of its checks with status and exact body, its 200 and warnings, its own rate
limit, what it does to profiles through the read API (unknown user, replacement, platform
mismatch, the 1,000 devices limit); any JSON body is fuzzed in tests/edge/test_v1_fuzz.py."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.edge.answers import AUTH, MALFORMED, MISSING, failure, queued, success
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd.models import Device, Kind

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


def device(**attributes: Any) -> dict[str, Any]:
    return {
        "type": "device",
        "customer_id": "u1",
        "device_id": "d1",
        "attributes": {"platform": "ANDROID", "push_id": "p1", **attributes},
    }


async def post_device(
    harness: Harness,
    payload: Any = None,
    *,
    path: str = "/v1/device/WS1",
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


async def test_a_valid_device_is_queued_and_answered_as_track_event_is(harness: Harness) -> None:
    body = device(model="Pixel 8", os_version="14", moe_gaid="g1", app_version="2.1",
                  moe_push_opted="True")  # fmt: skip
    response = await post_device(harness, body)
    assert response.status_code == 200
    assert response.json() == success(response)
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "10000",
        "9999",
    )  # a device update counts one, in its own bucket
    [envelope] = await queued(harness)
    assert (envelope.kind, envelope.customer_id, envelope.device_id) == (Kind.DEVICE, "u1", "d1")
    assert envelope.device == Device(
        device_id="d1",
        platform="ANDROID",
        app_version="2.1",
        attributes={"push_id": "p1", "model": "Pixel 8", "os_version": "14", "moe_gaid": "g1",
                    "moe_push_opted": "True"},
    )  # fmt: skip
    assert (envelope.event_count, harness.app.counters.accepted_events) == (0, 0)


async def test_the_app_id_query_form_is_the_same_endpoint(harness: Harness) -> None:
    response = await post_device(harness, device(), path="/v1/device", params={"app_id": "WS1"})
    assert response.status_code == 200
    assert response.json() == success(response)
    missing = await post_device(harness, device(), path="/v1/device")
    assert missing.status_code == 400
    assert missing.json() == failure(
        missing, "app_id is required in path/query params.", "ParamsRequired"
    )
    assert len(await queued(harness)) == 1


LONG = "x" * 513


def without(field: str) -> dict[str, Any]:
    body = device()
    del body[field]
    return body


def attributes(**changes: Any) -> dict[str, Any]:
    body = device()
    body["attributes"] = {**body["attributes"], **changes}
    body["attributes"] = {k: v for k, v in body["attributes"].items() if v is not ...}
    return body


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ("device", "A valid JSON document is required.", "Body type is not JSON", None),
        (without("type"), "type is not found in the payload", MISSING, "type"),
        ({**device(), "type": "Device"}, "type should be device", "AttributeError", "type"),
        ({**device(), "type": "event"}, "type should be device", "AttributeError", "type"),
        (without("customer_id"), "'customer_id' is not found in the payload", MISSING,
         "customer_id"),
        ({**device(), "customer_id": None}, "'customer_id' is not found in the payload", MISSING,
         "customer_id"),
        ({**device(), "customer_id": ""}, "customer_id can not be empty Unicode String", MISSING,
         "customer_id"),
        ({**device(), "customer_id": ["u"]},
         "customer_id is expected to be String or Unicode String.", MISSING, "customer_id"),
        ({**device(), "customer_id": LONG}, "customer_id is expected to be at most 512 characters",
         MISSING, "customer_id"),
        (without("device_id"), "device_id is not found in the payload", MISSING, "device_id"),
        ({**device(), "device_id": ""}, "device_id is not found in the payload", MISSING,
         "device_id"),
        ({**device(), "device_id": {"a": 1}},
         "device_id is expected to be String or Unicode String.", MISSING, "device_id"),
        ({**device(), "device_id": LONG}, "device_id is expected to be at most 512 characters",
         MISSING, "device_id"),
        (without("attributes"), "'attributes' is not found in the payload", MISSING,
         "attributes"),
        ({**device(), "attributes": ["x"]}, "attributes is expected to be JSON Object", MISSING,
         "attributes"),
        (attributes(platform=...), "'platform' is not found in payload", MISSING, "platform"),
        (attributes(platform="windows"), "'platform' is not a valid platform.", "ValueError",
         "platform"),
        (attributes(platform="unknown"), "'platform' is not a valid platform.", "ValueError",
         "platform"),
        (attributes(platform=7), "'platform' is not a valid platform.", "ValueError",
         "platform"),
        (attributes(push_id=...), "'push_id' is not found in payload", MISSING, "push_id"),
        (attributes(push_id=""), "'push_id' is not found in payload", MISSING, "push_id"),
        (attributes(push_id=12), "push_id is expected to be String or Unicode String.",
         MISSING, "push_id"),
        # in Track Event's order: customer_id before device_id before attributes
        ({"type": "device"}, "'customer_id' is not found in the payload", MISSING,
         "customer_id"),
        ({"type": "device", "customer_id": "u"}, "device_id is not found in the payload",
         MISSING, "device_id"),
        ({**device(), "attributes": {}}, "'platform' is not found in payload", MISSING,
         "platform"),
    ],
)  # fmt: skip
async def test_every_body_check_answers_its_400_and_queues_nothing(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_device(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)
    assert await queued(harness) == []


@pytest.mark.parametrize("platform", ["android", "IOS", "Web", "tv"])
async def test_platform_is_matched_case_insensitively(harness: Harness, platform: str) -> None:
    response = await post_device(harness, attributes(platform=platform))
    assert response.status_code == 200
    [envelope] = await queued(harness)
    assert envelope.device.platform == {"android": "ANDROID", "IOS": "iOS", "Web": "web",
                                        "tv": "TV"}[platform]  # fmt: skip


async def test_custom_and_mismatched_attributes_are_dropped_with_warnings(
    harness: Harness,
) -> None:
    body = attributes(colour="red", idfv="v1", moe_gaid="g1", model={"x": 1}, build=None)
    response = await post_device(harness, body)
    assert response.status_code == 200
    assert response.json() == success(
        response,
        [
            {"index": 0, "reason": "custom_device_attribute", "attribute": "attributes.colour"},
            {"index": 0, "reason": "identifier_platform_mismatch",
             "attribute": "attributes.idfv"},
            {"index": 0, "reason": "invalid_type", "attribute": "attributes.model"},
        ],
    )  # fmt: skip
    [envelope] = await queued(harness)
    assert envelope.device.attributes == {"push_id": "p1", "moe_gaid": "g1"}
    ios = await post_device(harness, attributes(platform="iOS", idfv="v1", moe_gaid="g1"))
    assert ios.json() == success(
        ios,
        [{"index": 0, "reason": "identifier_platform_mismatch",
          "attribute": "attributes.moe_gaid"}],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "status", "message", "type_"),
    [
        (b"", 400, "A valid JSON document is required", "Empty request body"),
        (b"{not json", 400, MALFORMED, "Malformed JSON"),
        (b"x" * 131_073, 413, "Payload size exceeds 128 KB", "PayloadTooLarge"),
    ],
)
async def test_body_level_rows_answer_as_track_event_does(
    harness: Harness, content: bytes, status: int, message: str, type_: str
) -> None:
    response = await post_device(harness, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


@pytest.mark.parametrize(
    ("path", "headers", "status", "message", "type_"),
    [
        ("/v1/device/WS2", "ok", 409, "App key mismatch in params and authentication",
         "Authentication Mismatch"),
        ("/v1/device/WS1", "no-auth", 401, "Authentication Header Required", AUTH),
        ("/v1/device/WS1", "wrong-key", 401,
         "App Secret key mismatch. Please login to the dashboard to verify key", AUTH),
        ("/v1/device/NOPE", "unknown", 401, "Invalid APP_ID used in Authentication Header", AUTH),
        ("/v1/device/WS1", "no-content-type", 400, "The Content-Type Header is required",
         "Missing header value"),
        ("/v1/device/WS1", "text-plain", 415, "Content type is not supported",
         "Unsupported media type"),
        ("/v1/device/WS1", "moe-appkey", 401,
         "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.", AUTH),
    ],
    ids=["other-workspace", "no-auth", "wrong-key", "unknown-workspace", "no-content-type",
         "text-plain", "moe-appkey"],
)  # fmt: skip
async def test_shared_checks_answer_as_track_event_does_and_queue_nothing(
    harness: Harness, path: str, headers: str, status: int, message: str, type_: str
) -> None:
    good = basic("WS1", harness.key)
    chosen = {
        "ok": {"Authorization": good, "Content-Type": "application/json"},
        "no-auth": {"Content-Type": "application/json"},
        "wrong-key": {"Authorization": basic("WS1", "nope"), "Content-Type": "application/json"},
        "unknown": {"Authorization": basic("NOPE", "x"), "Content-Type": "application/json"},
        "no-content-type": {"Authorization": good},
        "text-plain": {"Authorization": good, "Content-Type": "text/plain"},
        "moe-appkey": {"Authorization": good, "Content-Type": "application/json",
                       "MOE-APPKEY": "OTHER"},
    }[headers]  # fmt: skip
    content = msgspec.json.encode(device())
    response = await post_device(harness, path=path, headers=chosen, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


async def test_suspended_workspace_is_refused(harness: Harness) -> None:
    from trackd import admin

    await admin.set_suspended(harness.store, "WS1", True)
    await harness.app.registry.reload()
    response = await post_device(harness, device())
    assert response.status_code == 403
    assert response.json() == failure(response, "Account Suspended", "Account Suspended")


async def test_devices_have_their_own_rate_limit_with_track_events_429(harness: Harness) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, device_rate_limit=2))
    await harness.app.registry.reload()
    for remaining in ("1", "0"):
        ok = await post_device(harness, device())
        assert (ok.status_code, ok.headers["x-ratelimit-remaining"]) == (200, remaining)
    over = await post_device(harness, device())
    assert over.status_code == 429
    assert over.json() == failure(
        over, "Rate limits for customers exceeded. Please Try After Some Time",
        "Rate Limits Exceeded",
    )  # fmt: skip
    assert (over.headers["x-ratelimit-limit"], over.headers["x-ratelimit-remaining"]) == ("2", "0")
    assert int(over.headers["retry-after"]) >= 1
    assert len(await queued(harness)) == 2
    event = await harness.post(SEED_BODY)  # events are another budget
    assert (event.status_code, event.headers["x-ratelimit-limit"]) == (200, "30000")


async def test_strict_mode_refuses_a_dropped_attribute(harness: Harness) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, strict=True))
    await harness.app.registry.reload()
    response = await post_device(harness, attributes(colour="red"))
    assert response.status_code == 400
    assert response.json() == failure(
        response,
        "attributes.colour is not a device attribute MoEngage keeps "
        "(strict mode: custom_device_attribute)",
        "StrictModeViolation",
        "attributes.colour",
    )


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


def shown(user: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in d.items() if k not in ("first_seen", "last_seen", "last_ip")}
        for d in user["devices"]
    ]


async def test_a_device_shows_on_its_users_profile_with_every_attribute_kept(
    harness: Harness,
) -> None:
    assert (await harness.post({**SEED_BODY, "customer_id": "u1"})).status_code == 200
    body = device(model="Pixel 8", os_version="14", moe_gaid="g1", app_version="2.1",
                  moe_push_opted="True", moe_push_provisional_opted=False)  # fmt: skip
    assert (await post_device(harness, body)).status_code == 200
    status, user = await read(harness, "users/u1")
    assert status == 200
    assert shown(user) == [
        {"device_id": "d1", "platform": "ANDROID", "app_version": "2.1", "push_id": "p1",
         "model": "Pixel 8", "os_version": "14", "moe_gaid": "g1", "moe_push_opted": "True",
         "moe_push_provisional_opted": False},
        {"device_id": "u1", "platform": "ANDROID", "app_version": "1.2.3"},
    ]  # fmt: skip
    assert user["event_count"] == 1  # a device is not an event


async def test_a_device_of_an_unknown_user_is_dropped_with_an_issue(harness: Harness) -> None:
    response = await post_device(harness, {**device(), "customer_id": "ghost"})
    assert response.status_code == 200
    status, _ = await read(harness, "users/ghost")
    assert status == 404
    _, issues = await read(harness, "issues")
    assert [(i["request_id"], i["reason"], i["attribute"]) for i in issues["issues"]] == [
        (response.headers["x-request-id"], "unknown_user", "customer_id")
    ]


async def test_a_device_sharing_an_identifier_replaces_the_users_device(harness: Harness) -> None:
    assert (await harness.post({**SEED_BODY, "customer_id": "u1"})).status_code == 200
    assert (await post_device(harness, device(moe_gaid="g1"))).status_code == 200
    again = {**device(moe_gaid="g1"), "device_id": "d2"}
    again["attributes"]["push_id"] = "p2"
    assert (await post_device(harness, again)).status_code == 200
    by_push = {**device(), "device_id": "d3"}
    by_push["attributes"]["push_id"] = "p2"
    assert (await post_device(harness, by_push)).status_code == 200
    _, user = await read(harness, "users/u1")
    assert [d["device_id"] for d in user["devices"]] == ["d3", "u1"]
    assert shown(user)[0] == {"device_id": "d3", "platform": "ANDROID", "app_version": None,
                              "push_id": "p2"}  # fmt: skip


async def test_an_update_of_the_same_device_keeps_what_it_does_not_send(
    harness: Harness,
) -> None:
    assert (await harness.post({**SEED_BODY, "customer_id": "u1"})).status_code == 200
    assert (await post_device(harness, device(model="Pixel", app_version="1"))).status_code == 200
    assert (await post_device(harness, attributes(platform="web", push_id="p9"))).status_code == 200
    _, user = await read(harness, "users/u1")
    assert shown(user)[0] == {"device_id": "d1", "platform": "web", "app_version": "1",
                              "push_id": "p9", "model": "Pixel"}  # fmt: skip


async def test_a_device_for_a_merged_users_id_lands_on_the_retained_profile(
    harness: Harness,
) -> None:
    for customer in ("old", "new"):
        assert (await harness.post({**SEED_BODY, "customer_id": customer})).status_code == 200
    merge = {"merge_data": [{"merged_user": "old", "retained_user": "new"}]}
    response = await harness.client.post(
        "/v1/customer/merge", params={"app_id": "WS1"}, json=merge, headers=harness.headers()
    )
    assert response.status_code == 200
    assert (await post_device(harness, {**device(), "customer_id": "old"})).status_code == 200
    _, user = await read(harness, "users/new")
    assert "d1" in [d["device_id"] for d in user["devices"]]
