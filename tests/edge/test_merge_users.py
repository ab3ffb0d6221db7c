"""Merge Users, `POST /v1/customer/merge?app_id={ws}` (data-api.md §3, REF §6.4): every row of
its checks with status and exact body, its 200, its own rate limit and 429 wording, what it
does to profiles through the read API; any JSON body is fuzzed in tests/edge/test_v1_fuzz.py."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import pytest

from tests.edge.answers import AUTH, MALFORMED, MISSING, failure, queued
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd.models import Kind, MergePair

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


def body(*pairs: tuple[Any, Any]) -> dict[str, Any]:
    return {"merge_data": [{"merged_user": m, "retained_user": r} for m, r in pairs]}


async def post_merge(
    harness: Harness,
    payload: Any = None,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    return await harness.client.post(
        "/v1/customer/merge",
        params={"app_id": "WS1"} if params is None else params,
        json=payload if content is None else None,
        content=content,
        headers=harness.headers() if headers is None else headers,
    )


def merged(response: httpx.Response) -> dict[str, Any]:
    return {
        "status": "success",
        "operation": "created",
        "request_id": response.headers["x-request-id"],
    }


async def test_a_valid_merge_is_queued_with_its_pairs_and_answered_as_moengage_does(
    harness: Harness,
) -> None:
    response = await post_merge(harness, body(("m1", "r1"), ("m2", "r2")))
    assert response.status_code == 200
    assert response.json() == merged(response)
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "1000",
        "998",
    )  # a pair counts one, in its own bucket
    [envelope] = await queued(harness)
    assert (envelope.kind, envelope.customer_id, envelope.event_count) == (Kind.MERGE, None, 0)
    assert envelope.merges == [MergePair("m1", "r1"), MergePair("m2", "r2")]
    assert envelope.request_id == response.headers["x-request-id"]
    assert harness.app.counters.accepted_events == 0


LONG = "x" * 513


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ("merge", "A valid JSON document is required.", "Body type is not JSON", None),
        ({}, "merge_data is not found in the payload", MISSING, "merge_data"),
        ({"merge_data": None}, "merge_data is not found in the payload", MISSING, "merge_data"),
        ({"merge_data": {"a": 1}}, "merge_data is expected to be Array", MISSING, "merge_data"),
        ({"merge_data": "m"}, "merge_data is expected to be Array", MISSING, "merge_data"),
        ({"merge_data": []}, "merge_data can not be empty Array", MISSING, "merge_data"),
        (
            body(*[(f"m{i}", f"r{i}") for i in range(51)]),
            "max limit allowed is 50",
            "LimitBreached",
            "merge_data",
        ),
        ({"merge_data": [{"merged_user": "m", "retained_user": "r"}, "x"]}, MALFORMED,
         "Malformed JSON", "merge_data"),
        ({"merge_data": [{"retained_user": "r"}]}, "merged_user is not found in the payload",
         MISSING, "merged_user"),
        (body((1, "r")), "merged_user is expected to be String or Unicode String.", MISSING,
         "merged_user"),
        (body((["m"], "r")), "merged_user is expected to be String or Unicode String.", MISSING,
         "merged_user"),
        (body(("", "r")), "merged_user can not be empty Unicode String", MISSING, "merged_user"),
        (body((LONG, "r")), "merged_user is expected to be at most 512 characters", MISSING,
         "merged_user"),
        ({"merge_data": [{"merged_user": "m"}]}, "retained_user is not found in the payload",
         MISSING, "retained_user"),
        (body(("m", True)), "retained_user is expected to be String or Unicode String.",
         MISSING, "retained_user"),
        (body(("m", "")), "retained_user can not be empty Unicode String", MISSING,
         "retained_user"),
        (body(("m", LONG)), "retained_user is expected to be at most 512 characters", MISSING,
         "retained_user"),
        # each check over every pair before the next: merged_user of the second pair first
        (body(("m", 5), (7, "r")), "merged_user is expected to be String or Unicode String.",
         MISSING, "merged_user"),
    ],
)  # fmt: skip
async def test_every_body_check_answers_its_400_and_queues_nothing(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_merge(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)
    assert await queued(harness) == []


async def test_fifty_pairs_are_accepted(harness: Harness) -> None:
    response = await post_merge(harness, body(*[(f"m{i}", f"r{i}") for i in range(50)]))
    assert response.status_code == 200
    assert response.json() == merged(response)


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
    response = await post_merge(harness, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


@pytest.mark.parametrize(
    ("params", "headers", "status", "message", "type_"),
    [
        ({}, "ok", 400, "app_id is required in path/query params.", "ParamsRequired"),
        ({"app_id": "WS2"}, "ok", 409, "App key mismatch in params and authentication",
         "Authentication Mismatch"),
        ({"app_id": "WS1"}, "no-auth", 401,
         "Authentication Header Required", AUTH),
        ({"app_id": "WS1"}, "wrong-key", 401,
         "App Secret key mismatch. Please login to the dashboard to verify key", AUTH),
        ({"app_id": "NOPE"}, "unknown", 401, "Invalid APP_ID used in Authentication Header", AUTH),
        ({"app_id": "WS1"}, "no-content-type", 400, "The Content-Type Header is required",
         "Missing header value"),
        ({"app_id": "WS1"}, "text-plain", 415, "Content type is not supported",
         "Unsupported media type"),
        ({"app_id": "WS1"}, "moe-appkey", 401,
         "MOE_APPKEY doesn't match the Username (APP_KEY) used in Basic Auth authorization.", AUTH),
    ],
    ids=["no-app-id", "other-workspace", "no-auth", "wrong-key", "unknown-workspace",
         "no-content-type", "text-plain", "moe-appkey"],
)  # fmt: skip
async def test_shared_checks_answer_as_track_event_does_and_queue_nothing(
    harness: Harness,
    params: dict[str, str],
    headers: Any,
    status: int,
    message: str,
    type_: str,
) -> None:
    good = basic("WS1", harness.key)
    chosen = {
        "ok": {"Authorization": good, "Content-Type": "application/json"},
        "no-auth": {"Content-Type": "application/json"},
        "wrong-key": {"Authorization": basic("WS1", "nope"), "Content-Type": "application/json"},
        "unknown": {"Authorization": basic("NOPE", "x"), "Content-Type": "application/json"},
        "no-content-type": {"Authorization": good},
        "text-plain": {"Authorization": good, "Content-Type": "text/plain"},
        "moe-appkey": {
            "Authorization": good,
            "Content-Type": "application/json",
            "MOE-APPKEY": "OTHER",
        },
    }[headers]
    content = msgspec.json.encode(body(("m", "r")))
    response = await post_merge(harness, params=params, headers=chosen, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


async def test_suspended_workspace_is_refused(harness: Harness) -> None:
    from trackd import admin

    await admin.set_suspended(harness.store, "WS1", True)
    await harness.app.registry.reload()
    response = await post_merge(harness, body(("m", "r")))
    assert response.status_code == 403
    assert response.json() == failure(response, "Account Suspended", "Account Suspended")


async def test_merges_have_their_own_rate_limit_a_pair_counting_one_with_merges_429(
    harness: Harness,
) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, merge_rate_limit=3))
    await harness.app.registry.reload()
    first = await post_merge(harness, body(("a", "b"), ("c", "d")))
    assert first.status_code == 200
    assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == (
        "3",
        "1",
    )
    over = await post_merge(harness, body(("e", "f"), ("g", "h")))
    assert over.status_code == 429
    assert over.json() == failure(over, "Rate limit exceeded", "RateLimitError")
    assert (over.headers["x-ratelimit-limit"], over.headers["x-ratelimit-remaining"]) == ("3", "1")
    assert int(over.headers["retry-after"]) >= 1
    assert len(await queued(harness)) == 1
    event = await harness.post(SEED_BODY)  # events and user updates are other budgets
    assert (event.status_code, event.headers["x-ratelimit-limit"]) == (200, "30000")


async def test_an_idempotent_retry_gets_the_same_answer_and_queues_once(harness: Harness) -> None:
    headers = {**harness.headers(), "Idempotency-Key": "merge-1"}
    first = await post_merge(harness, body(("m", "r")), headers=headers)
    again = await post_merge(harness, body(("m", "r")), headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() == merged(first)
    assert len(await queued(harness)) == 1


# -- what it does, through the read API ---------------------------------------------------------


async def read(harness: Harness, path: str) -> Any:
    import time

    import anyio

    deadline = time.monotonic() + 10
    while await harness.queue.lag("processor"):
        assert time.monotonic() < deadline, "the processor did not catch up"
        await anyio.sleep(0.02)
    response = await harness.client.get(
        f"/api/workspaces/WS1/{path}", headers={"Authorization": basic("WS1", harness.key)}
    )
    return response.status_code, response.json()


async def test_a_merge_shows_in_the_read_api_and_later_events_follow_it(harness: Harness) -> None:
    for customer in ("old", "new"):
        response = await harness.post({**SEED_BODY, "customer_id": customer})
        assert response.status_code == 200
    assert (await post_merge(harness, body(("old", "new"), ("ghost", "new")))).status_code == 200
    assert (await harness.post({**SEED_BODY, "customer_id": "old"})).status_code == 200
    status, user = await read(harness, "users/old")
    assert status == 200
    assert (user["customer_id"], user["aliases"], user["event_count"]) == ("new", ["old"], 5)
    status, page = await read(harness, "events?customer_id=old")
    assert [e["action"] for e in page["events"]] == [
        "ProductAdded",
        "MOE_USER_MERGED",
        "MOE_USER_MERGE_EVENT",
        "ProductAdded",
        "ProductAdded",
    ]
    assert {e["customer_id"] for e in page["events"]} == {"new"}
    _, issues = await read(harness, "issues")
    assert [(i["index"], i["reason"], i["attribute"]) for i in issues["issues"]] == [
        (1, "merge_unknown_user", "merged_user")
    ]
