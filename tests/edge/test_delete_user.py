"""Delete User, `POST /v1/customer/delete?app_id={ws}` (data-api.md §4, REF §6.5): every row of
its checks with status and exact body, its not-found 400 from the store, its 200, its own rate
limit and REF's 429 wording for Delete, its 500 wording, and what it does through the read
API (a buffer of 0: at once; otherwise `deletion_scheduled_at`)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import msgspec
import pytest

from tests.edge.answers import MALFORMED, MISSING, failure, queued, success
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd.models import Kind, UserDelete

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


async def post_delete(
    harness: Harness,
    payload: Any = None,
    *,
    params: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    return await harness.client.post(
        "/v1/customer/delete",
        params={"app_id": "WS1"} if params is None else params,
        json=payload if content is None else None,
        content=content,
        headers=harness.headers(),
    )


async def settled(harness: Harness) -> None:
    deadline = time.monotonic() + 10
    while await harness.queue.lag("processor"):
        assert time.monotonic() < deadline, "the processor did not catch up"
        await anyio.sleep(0.02)


async def read(harness: Harness, path: str) -> tuple[int, Any]:
    await settled(harness)
    response = await harness.client.get(
        f"/api/workspaces/WS1/{path}", headers={"Authorization": basic("WS1", harness.key)}
    )
    return response.status_code, response.json()


async def set_workspace(harness: Harness, **changes: Any) -> None:
    workspace = await harness.store.get("WS1")
    assert workspace is not None
    await harness.store.save(msgspec.structs.replace(workspace, **changes))
    await harness.app.registry.reload()


async def make_user(harness: Harness, customer_id: str = "123") -> None:
    assert (await harness.post({**SEED_BODY, "customer_id": customer_id})).status_code == 200
    await settled(harness)


async def test_a_delete_of_a_known_user_is_queued_and_answered_as_track_event(
    harness: Harness,
) -> None:
    await make_user(harness)
    before = len(await queued(harness))
    response = await post_delete(harness, {"identity_type": "customer_id", "identity_value": "123"})
    assert response.status_code == 200
    assert response.json() == success(response)
    assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == (
        "5000",
        "4999",
    )  # its own bucket: 5,000 requests a minute (REF §3)
    envelopes = await queued(harness)
    assert len(envelopes) == before + 1
    envelope = envelopes[-1]
    assert (envelope.kind, envelope.request_id) == (Kind.DELETE, response.headers["x-request-id"])
    assert envelope.delete == UserDelete(
        identity_type="customer_id", identity_value="123", buffer_ms=86_400_000
    )


LONG = "x" * 513


@pytest.mark.parametrize(
    ("payload", "message", "type_", "attribute"),
    [
        ([], "A valid JSON document is required.", "Body type is not JSON", None),
        ({}, "identity_type is not found in the payload", MISSING, "identity_type"),
        ({"identity_type": 1, "identity_value": "123"},
         "identity_type is expected to be String or Unicode String.", MISSING, "identity_type"),
        ({"identity_type": "email", "identity_value": "123"},
         "identity_type should be customer_id/moengage_id", MISSING, "identity_type"),
        ({"identity_type": "customer_id"},
         "identity_value is not found in the payload", MISSING, "identity_value"),
        ({"identity_type": "customer_id", "identity_value": 5},
         "identity_value is expected to be String or Unicode String.", MISSING, "identity_value"),
        ({"identity_type": "customer_id", "identity_value": ""},
         "identity_value can not be empty Unicode String", MISSING, "identity_value"),
        ({"identity_type": "customer_id", "identity_value": LONG},
         "identity_value is expected to be at most 512 characters", MISSING, "identity_value"),
    ],
)  # fmt: skip
async def test_every_body_check_answers_its_400_and_queues_nothing(
    harness: Harness, payload: Any, message: str, type_: str, attribute: str | None
) -> None:
    response = await post_delete(harness, payload)
    assert response.status_code == 400
    assert response.json() == failure(response, message, type_, attribute)
    assert await queued(harness) == []


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
    response = await post_delete(harness, content=content)
    assert response.status_code == status
    assert response.json() == failure(response, message, type_)
    assert await queued(harness) == []


async def test_no_app_id_is_params_required(harness: Harness) -> None:
    response = await post_delete(harness, {"identity_type": "customer_id"}, params={})
    assert response.status_code == 400
    assert response.json() == failure(
        response, "app_id is required in path/query params.", "ParamsRequired"
    )


async def test_an_unknown_user_is_refused_with_moengage_wording(harness: Harness) -> None:
    for kind in ("customer_id", "moengage_id"):
        response = await post_delete(harness, {"identity_type": kind, "identity_value": "ghost"})
        assert response.status_code == 400
        assert response.json() == failure(
            response, "User doesn't exists with customer id ghost", "Not Found"
        )
    assert await queued(harness) == []


async def test_deletes_have_their_own_rate_limit_with_deletes_429(harness: Harness) -> None:
    await make_user(harness)
    await set_workspace(harness, delete_rate_limit=1)
    payload = {"identity_type": "customer_id", "identity_value": "123"}
    assert (await post_delete(harness, payload)).status_code == 200
    over = await post_delete(harness, payload)
    assert over.status_code == 429
    assert over.json() == {
        "status": "fail",
        "title": "Rate limit exceeded",
        "description": "Exceeded rate limit for this url",
    }
    assert (over.headers["x-ratelimit-limit"], over.headers["x-ratelimit-remaining"]) == ("1", "0")
    event = await harness.post(SEED_BODY)  # events are another budget
    assert (event.status_code, event.headers["x-ratelimit-limit"]) == (200, "30000")


async def test_an_unexpected_failure_answers_deletes_500(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> str | None:
        raise RuntimeError("boom")

    monkeypatch.setattr(harness.app.events, "live_user", broken)
    response = await post_delete(harness, {"identity_type": "customer_id", "identity_value": "1x"})
    assert response.status_code == 500
    assert response.json() == {
        "status": "fail",
        "title": "Internal Error",
        "description": "Please contact the MoEngage team.",
    }


async def test_a_delete_without_buffer_removes_the_user_and_a_new_one_gets_a_new_id(
    harness: Harness,
) -> None:
    await set_workspace(harness, delete_buffer=0)
    await make_user(harness)
    status, user = await read(harness, "users/123")
    assert status == 200
    first_id = user["moengage_id"]
    payload = {"identity_type": "moengage_id", "identity_value": first_id}
    assert (await post_delete(harness, payload)).status_code == 200
    status, _ = await read(harness, "users/123")
    assert status == 404
    status, page = await read(harness, "events?customer_id=123")
    assert (status, page["events"]) == (200, [])
    await make_user(harness)
    status, again = await read(harness, "users/123")
    assert status == 200 and again["moengage_id"] != first_id
    assert "deletion_scheduled_at" not in again


async def test_a_buffered_delete_shows_when_it_is_due(harness: Harness) -> None:
    await make_user(harness)
    response = await post_delete(harness, {"identity_type": "customer_id", "identity_value": "123"})
    assert response.status_code == 200
    status, user = await read(harness, "users/123")
    assert status == 200
    [envelope] = [e for e in await queued(harness) if e.kind is Kind.DELETE]
    assert user["deletion_scheduled_at"] == envelope.received_at + 86_400_000


async def test_a_user_made_by_an_accepted_request_is_never_not_found(harness: Harness) -> None:
    for i in range(20):  # each delete sent right after the 200 that makes its user
        assert (await harness.post({**SEED_BODY, "customer_id": f"fresh{i}"})).status_code == 200
        payload = {"identity_type": "customer_id", "identity_value": f"fresh{i}"}
        response = await post_delete(harness, payload)
        assert response.status_code == 200, response.text


async def test_a_processor_that_does_not_catch_up_in_time_is_a_503(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trackd.edge import v1

    async def never(consumer: str) -> int:
        return -1

    monkeypatch.setattr(v1, "CAUGHT_UP_SECONDS", 0.05)
    monkeypatch.setattr(harness.queue, "applied", never)
    response = await post_delete(harness, {"identity_type": "customer_id", "identity_value": "x1"})
    assert response.status_code == 503
    assert response.json() == failure(
        response,
        "Earlier requests are still being processed; the answer would not include them. "
        "Please retry.",
        "ServerError",
    )
    assert await queued(harness) == []
