"""`POST /v1/event/{workspace_id}`: the body size limit (row 1), the rate limit (row 26, §5), a
queue that refuses writes (row 27) and unexpected failures (row 28)."""

from __future__ import annotations

import copy
import gzip
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.edge.answers import failure, queued, success
from tests.edge.payloads import httpx_json
from tests.factories import SEED_BODY
from tests.harness import Harness
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.limiter.memory import MemoryLimiter
from trackd.queue.memory import MemoryQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]


LIMIT = 131072
#: (message, type) of the error bodies: `failure(response, *TOO_LARGE)`
TOO_LARGE = ("Payload size exceeds 128 KB", "PayloadTooLarge")
RATE_LIMITED = (
    "Rate limits for customers exceeded. Please Try After Some Time",
    "Rate Limits Exceeded",
)


def with_actions(count: int) -> dict[str, Any]:
    body = copy.deepcopy(SEED_BODY)
    body["actions"] = [copy.deepcopy(SEED_BODY["actions"][0]) for _ in range(count)]
    return body


def padded(size: int) -> bytes:
    """The seed request as JSON, padded with trailing whitespace to exactly `size` bytes."""
    raw = httpx_json(SEED_BODY)
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def rate(response: httpx.Response) -> tuple[int, int, int]:
    """(x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset)."""
    h = response.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


# Row 1: body size -------------------------------------------------------------------------------


async def test_body_of_exactly_131072_bytes_is_accepted(harness: Harness) -> None:
    response = await harness.post(content=padded(LIMIT))
    assert response.status_code == 200
    assert response.json() == success(response)
    assert len(await queued(harness)) == 1


async def test_body_of_131073_bytes_is_rejected_with_413(harness: Harness) -> None:
    response = await harness.post(content=padded(LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert await queued(harness) == []


async def test_declared_content_length_over_the_limit_is_rejected_with_413(
    harness: Harness,
) -> None:
    """The declared length alone decides: the (small) body is never read."""
    headers = {**harness.headers(), "Content-Length": str(LIMIT + 1)}
    response = await harness.post(content=padded(500), headers=headers)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert await queued(harness) == []


async def test_streamed_body_over_the_limit_is_rejected_with_413(harness: Harness) -> None:
    """No Content-Length (chunked): the edge counts as it reads."""

    async def chunks() -> AsyncIterator[bytes]:
        body = padded(LIMIT + 4096)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    request = harness.client.build_request(
        "POST", "/v1/event/WS1", content=chunks(), headers=harness.headers()
    )
    assert "content-length" not in request.headers
    response = await harness.client.send(request)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert await queued(harness) == []


async def test_small_gzip_body_inflating_over_the_limit_is_rejected_with_413(
    harness: Harness,
) -> None:
    compressed = gzip.compress(padded(LIMIT + 1))
    assert len(compressed) < 2000
    headers = {**harness.headers(), "Content-Encoding": "gzip"}
    response = await harness.post(content=compressed, headers=headers)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)
    assert await queued(harness) == []


async def test_gzip_body_inflating_to_exactly_the_limit_is_accepted(harness: Harness) -> None:
    headers = {**harness.headers(), "Content-Encoding": "gzip"}
    response = await harness.post(content=gzip.compress(padded(LIMIT)), headers=headers)
    assert response.status_code == 200
    assert response.json() == success(response)
    assert len(await queued(harness)) == 1


async def test_oversize_body_beats_missing_authorization(harness: Harness) -> None:
    response = await harness.post(content=padded(LIMIT + 1), headers={})
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)


async def test_oversize_gzip_body_beats_wrong_key(harness: Harness) -> None:
    headers = {**harness.headers("WS1", "not-the-key"), "Content-Encoding": "gzip"}
    response = await harness.post(content=gzip.compress(padded(LIMIT + 1)), headers=headers)
    assert response.status_code == 413
    assert response.json() == failure(response, *TOO_LARGE)


# Rate-limit headers (§5) ------------------------------------------------------------------------


async def test_accepted_request_carries_rate_limit_headers(harness: Harness) -> None:
    response = await harness.post(with_actions(3))
    assert response.status_code == 200
    limit, remaining, reset = rate(response)
    assert (limit, remaining) == (30000, 29997)
    assert 1 <= reset <= 60


@pytest.mark.parametrize(
    ("headers", "content", "status"),
    [
        pytest.param({"Content-Type": "application/json"}, b"{}", 401, id="no Authorization"),
        pytest.param("wrong-key", b"{}", 401, id="wrong key"),
        pytest.param(None, b"{not json", 400, id="bad JSON"),
        pytest.param(None, b'{"type": "event"}', 400, id="customer_id missing"),
        pytest.param(None, b" " * (LIMIT + 1), 413, id="too large"),
    ],
)
async def test_rejected_request_of_a_known_workspace_carries_rate_limit_headers_unchanged(
    harness: Harness, headers: Any, content: bytes, status: int
) -> None:
    first = await harness.post(with_actions(2))
    assert rate(first)[:2] == (30000, 29998)
    if headers == "wrong-key":
        headers = harness.headers("WS1", "not-the-key")
    response = await harness.post(content=content, headers=headers)
    assert response.status_code == status
    limit, remaining, reset = rate(response)
    assert (limit, remaining) == (30000, 29998)
    assert 1 <= reset <= 60
    assert len(await queued(harness)) == 1


@pytest.fixture
async def small(harness: Harness) -> dict[str, str]:
    """Headers for workspace SMALL, limited to 5 events per 60 s."""
    workspace_id, key = await harness.create_workspace(workspace_id="SMALL", rate_limit=5)
    return harness.headers(workspace_id, key)


async def post_small(harness: Harness, headers: dict[str, str], actions: int) -> httpx.Response:
    return await harness.post(with_actions(actions), workspace_id="SMALL", headers=headers)


async def test_request_that_would_exceed_the_limit_is_rejected_whole_with_429(
    harness: Harness, small: dict[str, str]
) -> None:
    first = await post_small(harness, small, 3)
    assert first.status_code == 200
    assert rate(first)[:2] == (5, 2)

    second = await post_small(harness, small, 3)
    assert second.status_code == 429
    assert second.json() == failure(second, *RATE_LIMITED)
    limit, remaining, reset = rate(second)
    assert (limit, remaining) == (5, 2)
    assert 1 <= reset <= 60
    assert 1 <= int(second.headers["retry-after"]) <= 60
    assert [e.request_id for e in await queued(harness)] == [first.headers["x-request-id"]]

    # Nothing of the rejected request was counted: the two events left still fit.
    third = await post_small(harness, small, 2)
    assert third.status_code == 200
    assert rate(third)[:2] == (5, 0)
    assert len(await queued(harness)) == 2


async def test_events_are_counted_not_requests(harness: Harness, small: dict[str, str]) -> None:
    whole = await post_small(harness, small, 5)
    assert whole.status_code == 200
    assert rate(whole)[:2] == (5, 0)

    one_more = await post_small(harness, small, 1)
    assert one_more.status_code == 429
    assert one_more.json() == failure(one_more, *RATE_LIMITED)
    assert rate(one_more)[:2] == (5, 0)
    assert int(one_more.headers["retry-after"]) >= 1
    [envelope] = await queued(harness)
    assert len(envelope.actions) == 5


async def test_request_with_more_events_than_the_limit_is_rejected_whole(
    harness: Harness, small: dict[str, str]
) -> None:
    too_many = await post_small(harness, small, 6)
    assert too_many.status_code == 429
    assert too_many.json() == failure(too_many, *RATE_LIMITED)
    assert rate(too_many)[:2] == (5, 5)
    assert int(too_many.headers["retry-after"]) >= 1
    assert await queued(harness) == []

    exactly = await post_small(harness, small, 5)
    assert exactly.status_code == 200
    assert rate(exactly)[:2] == (5, 0)


async def test_rate_limit_is_per_workspace(harness: Harness, small: dict[str, str]) -> None:
    assert (await post_small(harness, small, 5)).status_code == 200
    assert (await post_small(harness, small, 1)).status_code == 429
    other = await harness.post(with_actions(1))
    assert other.status_code == 200
    assert rate(other)[:2] == (30000, 29999)


async def test_rejected_request_does_not_use_up_the_limit(
    harness: Harness, small: dict[str, str]
) -> None:
    bad = with_actions(5)
    bad["actions"][4]["user_time"] = "never"
    rejected = await harness.post(bad, workspace_id="SMALL", headers=small)
    assert rejected.status_code == 400
    assert rate(rejected)[:2] == (5, 5)
    assert (await post_small(harness, small, 5)).status_code == 200


# Row 27: the queue cannot take the request ------------------------------------------------------


async def test_closed_queue_is_answered_with_503_and_retry_after(harness: Harness) -> None:
    await harness.queue.aclose()
    response = await harness.post(SEED_BODY)
    assert response.status_code == 503
    assert response.json() == failure(
        response, "Service temporarily unavailable. Please retry.", "ServerError"
    )
    assert int(response.headers["retry-after"]) >= 1
    assert rate(response)[0] == 30000
    assert await queued(harness) == []


async def test_a_503_costs_no_rate_limit_quota(harness: Harness) -> None:
    before = await harness.post(SEED_BODY)
    await harness.queue.aclose()
    refused = await harness.post({**SEED_BODY, "actions": SEED_BODY["actions"] * 5})
    assert refused.status_code == 503
    assert refused.headers["x-ratelimit-remaining"] == before.headers["x-ratelimit-remaining"]


# Row 28: anything unexpected --------------------------------------------------------------------


class ExplodingLimiter(MemoryLimiter):
    """Fault injection for row 28: `acquire` fails with an error no adapter means to raise.

    The real limiters only fail with `BackendError` (answered 503), so an unexpected exception
    in the hot path cannot be provoked any other way.
    """

    async def acquire(self, key: str, cost: int, limit: int) -> Any:
        raise RuntimeError("injected failure")


async def test_unexpected_failure_is_answered_with_500_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = TrackdApp(
        Services(
            Settings(data_dir=str(tmp_path)),
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=MemoryQueue(),
            limiter=ExplodingLimiter(),
        )
    )
    await app.startup()
    try:
        _, key = await admin.create_workspace(app.store, workspace_id="WS1")
        await app.registry.reload()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            local = Harness(app, client)
            local.workspace_id, local.key = "WS1", key
            with caplog.at_level(logging.ERROR, logger="trackd.edge.track"):
                response = await local.post(SEED_BODY)
            assert response.status_code == 500
            request_id = response.headers["x-request-id"]
            assert response.json() == {
                "status": "fail",
                "error": {
                    "message": "An unexpected error was encountered while processing this request.",
                    "type": "ServerError",
                    "request_id": request_id,
                },
            }
            assert await local.queued() == []
            assert [r.getMessage() for r in caplog.records] == [
                f"unexpected failure on request {request_id}"
            ]
    finally:
        await app.shutdown()
