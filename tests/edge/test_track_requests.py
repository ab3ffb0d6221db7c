"""`POST /v1/event/{workspace_id}`: how a request may arrive (gzip, Idempotency-Key,
X-Forwarded-For, unknown keys) and what the queued envelope then holds."""

from __future__ import annotations

import asyncio
import copy
import gzip
from pathlib import Path

import httpx
import pytest

from tests.edge.answers import MALFORMED, failure, queued, success
from tests.edge.payloads import httpx_json
from tests.factories import SEED_BODY, basic
from tests.harness import Harness
from trackd import admin
from trackd.edge.app import TrackdApp
from trackd.limiter.memory import MemoryLimiter
from trackd.models import Action
from trackd.queue.sqlite import SQLiteQueue
from trackd.services import Services
from trackd.settings import Settings
from trackd.store import open_event_store
from trackd.store.memory import MemoryWorkspaceStore

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("inspecting")]

SEED_ACTION = Action(
    index=0,
    action="ProductAdded",
    attributes={"product": "Accessories", "color": "Black", "Brand": "Adidas"},
    platform="ANDROID",
    app_version="1.2.3",
    current_time=1708939453396,
    user_time=1708939453396,
    user_timezone_offset=0,
)


# gzip -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "GZIP", "identity"])
async def test_gzip_or_identity_body_is_accepted(harness: Harness, encoding: str) -> None:
    raw = httpx_json(SEED_BODY)
    content = raw if encoding == "identity" else gzip.compress(raw)
    headers = {**harness.headers(), "Content-Encoding": encoding}
    response = await harness.post(content=content, headers=headers)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await queued(harness)
    assert (envelope.request_id, envelope.customer_id) == (response.headers["x-request-id"], "123")
    assert envelope.actions == [SEED_ACTION]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x1f\x8b\x08\x00garbage-not-deflate", id="corrupt"),
        pytest.param(gzip.compress(httpx_json(SEED_BODY))[:-12], id="truncated"),
        pytest.param(gzip.compress(httpx_json(SEED_BODY)) + b"trailing", id="trailing bytes"),
        pytest.param(httpx_json(SEED_BODY), id="plain JSON labelled gzip"),
        pytest.param(gzip.compress(b"{not json"), id="gzip of bad JSON"),
    ],
)
async def test_gzip_that_does_not_inflate_to_json_is_rejected_with_400(
    harness: Harness, content: bytes
) -> None:
    headers = {**harness.headers(), "Content-Encoding": "gzip"}
    response = await harness.post(content=content, headers=headers)
    assert response.status_code == 400
    assert response.json() == failure(response, MALFORMED, "Malformed JSON")
    assert await queued(harness) == []


async def test_gzip_of_nothing_is_an_empty_body(harness: Harness) -> None:
    headers = {**harness.headers(), "Content-Encoding": "gzip"}
    response = await harness.post(content=gzip.compress(b""), headers=headers)
    assert response.status_code == 400
    assert response.json() == failure(
        response, "A valid JSON document is required", "Empty request body"
    )
    assert await queued(harness) == []


async def test_brotli_body_is_rejected_with_415(harness: Harness) -> None:
    headers = {**harness.headers(), "Content-Encoding": "br"}
    response = await harness.post(content=b"\x8b\x02\x80{}\x03", headers=headers)
    assert response.status_code == 415
    assert response.json() == failure(
        response, "Content type is not supported", "Unsupported media type"
    )
    assert await queued(harness) == []


async def test_corrupt_gzip_with_a_wrong_content_type_gets_415(harness: Harness) -> None:
    headers = {**harness.headers(), "Content-Type": "text/plain", "Content-Encoding": "gzip"}
    response = await harness.post(content=b"\x1f\x8bnot gzip", headers=headers)
    assert response.status_code == 415
    assert response.json() == failure(
        response, "Content type is not supported", "Unsupported media type"
    )


async def test_corrupt_gzip_with_a_wrong_key_gets_401(harness: Harness) -> None:
    headers = {**harness.headers("WS1", "not-the-key"), "Content-Encoding": "gzip"}
    response = await harness.post(content=b"\x1f\x8bnot gzip", headers=headers)
    assert response.status_code == 401
    assert response.json() == failure(
        response,
        "App Secret key mismatch. Please login to the dashboard to verify key",
        "Authentication required",
    )


# Idempotency-Key --------------------------------------------------------------------------------


def keyed(harness: Harness, key: str, workspace: tuple[str, str] | None = None) -> dict[str, str]:
    return {**harness.headers(*(workspace or ())), "Idempotency-Key": key}


async def test_same_idempotency_key_twice_gets_the_first_response_and_queues_once(
    harness: Harness,
) -> None:
    first = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    assert first.status_code == 200
    assert first.json() == success(first)

    retry = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["x-request-id"] == first.headers["x-request-id"]
    # The retry ingests nothing: one envelope, and the limit counted one event.
    assert [e.request_id for e in await queued(harness)] == [first.headers["x-request-id"]]
    assert retry.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


async def test_retry_of_a_request_with_warnings_gets_the_same_warnings(harness: Harness) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["actions"][0]["attributes"]["moe_x"] = 1
    first = await harness.post(body, headers=keyed(harness, "k1"))
    retry = await harness.post(body, headers=keyed(harness, "k1"))
    assert first.status_code == retry.status_code == 200
    assert (
        retry.json()
        == first.json()
        == {
            **success(first),
            "warnings": [{"index": 0, "attribute": "moe_x", "reason": "reserved_prefix"}],
        }
    )
    assert len(await queued(harness)) == 1


async def test_different_idempotency_key_queues_a_new_envelope(harness: Harness) -> None:
    first = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    second = await harness.post(SEED_BODY, headers=keyed(harness, "order-43"))
    assert first.status_code == second.status_code == 200
    assert second.json() == success(second)
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    assert [e.request_id for e in await queued(harness)] == [
        first.headers["x-request-id"],
        second.headers["x-request-id"],
    ]


async def test_same_idempotency_key_in_another_workspace_is_a_separate_request(
    harness: Harness,
) -> None:
    other = await harness.create_workspace(workspace_id="WS2")
    first = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    second = await harness.post(
        SEED_BODY, workspace_id="WS2", headers=keyed(harness, "order-42", other)
    )
    assert first.status_code == second.status_code == 200
    assert second.json() == success(second)
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    envelopes = await queued(harness)
    assert [(e.workspace_id, e.request_id) for e in envelopes] == [
        ("WS1", first.headers["x-request-id"]),
        ("WS2", second.headers["x-request-id"]),
    ]


async def test_requests_without_idempotency_key_are_each_queued(harness: Harness) -> None:
    first = await harness.post(SEED_BODY)
    second = await harness.post(SEED_BODY)
    assert first.status_code == second.status_code == 200
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert len(await queued(harness)) == 2


async def test_rejected_request_does_not_claim_its_idempotency_key(harness: Harness) -> None:
    bad = copy.deepcopy(SEED_BODY)
    bad["actions"] = []
    rejected = await harness.post(bad, headers=keyed(harness, "order-42"))
    assert rejected.status_code == 400
    assert await queued(harness) == []
    retry = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    assert retry.status_code == 200
    assert retry.json() == success(retry)
    assert [e.request_id for e in await queued(harness)] == [retry.headers["x-request-id"]]


# X-Forwarded-For --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("forwarded", "client_ip"),
    [
        pytest.param("203.0.113.9", "203.0.113.9", id="one address"),
        pytest.param("203.0.113.9, 10.0.0.1, 10.0.0.2", "203.0.113.9", id="first of a chain"),
        pytest.param("unknown, 203.0.113.5", "203.0.113.5", id="first valid one"),
        pytest.param("2001:db8::1", "2001:db8::1", id="IPv6"),
        pytest.param("not-an-ip", "198.51.100.7", id="malformed: the peer"),
        pytest.param("203.0.113.999", "198.51.100.7", id="out of range: the peer"),
        pytest.param("", "198.51.100.7", id="empty: the peer"),
    ],
)
async def test_client_ip_is_the_first_valid_forwarded_address_else_the_peer(
    harness: Harness, forwarded: str, client_ip: str
) -> None:
    headers = {**harness.headers(), "X-Forwarded-For": forwarded}
    response = await harness.post(SEED_BODY, headers=headers)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await queued(harness)
    assert envelope.client_ip == client_ip


async def test_client_ip_without_forwarded_header_is_the_peer(harness: Harness) -> None:
    response = await harness.post(SEED_BODY)
    assert response.status_code == 200
    [envelope] = await queued(harness)
    assert envelope.client_ip == "198.51.100.7"


# Unknown and extra keys -------------------------------------------------------------------------


async def test_unknown_keys_are_ignored_and_extra_action_fields_kept(harness: Harness) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["campaign"] = {"id": 7}
    body["MOE-APPKEY"] = "WS1"
    body["actions"][0].update(
        {"moe_os_type": "android", "real_time_action": "true", "session": "abc", "extra": [1]}
    )
    response = await harness.post(body)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await queued(harness)
    assert envelope.actions == [
        Action(
            index=0,
            action="ProductAdded",
            attributes={"product": "Accessories", "color": "Black", "Brand": "Adidas"},
            platform="ANDROID",
            app_version="1.2.3",
            current_time=1708939453396,
            user_time=1708939453396,
            user_timezone_offset=0,
            moe_os_type="android",
            real_time_action="true",
        )
    ]


async def test_seed_request_queues_the_whole_envelope(harness: Harness) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["device_id"] = "dev-9"
    response = await harness.post(body)
    assert response.status_code == 200
    assert response.json() == success(response)
    [envelope] = await queued(harness)
    assert envelope.workspace_id == "WS1"
    assert envelope.request_id == response.headers["x-request-id"]
    assert (envelope.customer_id, envelope.device_id) == ("123", "dev-9")
    assert (envelope.project_code, envelope.user_identifiers) == (None, None)
    assert envelope.warnings == []
    assert envelope.actions == [SEED_ACTION]


async def test_concurrent_retries_with_one_key_ingest_once_and_spend_quota_once(
    tmp_path: Path,
) -> None:
    """On the SQLite queue both retries pass `seen` before either commits (group commit), so
    the queue's dedupe decides: the loser answers the same 200, ingests nothing and gives its
    quota back."""
    app = TrackdApp(
        Services(
            Settings(data_dir=str(tmp_path), processor="off"),
            workspaces=MemoryWorkspaceStore(),
            events=open_event_store("memory://"),
            queue=SQLiteQueue(tmp_path / "queue.db"),
            limiter=MemoryLimiter(),
        )
    )
    await app.startup()
    try:
        _, key = await admin.create_workspace(app.store, workspace_id="WS1")
        await app.registry.reload()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {
                "Authorization": basic("WS1", key),
                "Content-Type": "application/json",
                "Idempotency-Key": "same-key",
            }
            first, second = await asyncio.gather(
                *(client.post("/v1/event/WS1", json=SEED_BODY, headers=headers) for _ in "ab")
            )
            after = await client.post("/v1/event/WS1", json=SEED_BODY, headers=headers)
        assert (first.status_code, second.status_code, after.status_code) == (200, 200, 200)
        assert first.json() == second.json() == after.json()
        envelopes = await app.queue.get("inspect", 100, 0)
        assert [d.envelope.request_id for d in envelopes] == [first.json()["request_id"]]
        assert after.headers["x-ratelimit-remaining"] == str(30000 - 1)
    finally:
        await app.shutdown()
