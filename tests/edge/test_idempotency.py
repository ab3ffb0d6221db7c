"""An Idempotency-Key names one request: its endpoint and its body. A replay gets the first
answer and ingests nothing (tests/edge/test_track_requests.py); the same key for a different
body or another endpoint is the IETF Idempotency-Key draft's 422, and nothing of it is kept."""

from __future__ import annotations

import asyncio
import copy
import gzip
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.edge.answers import failure, queued, success
from tests.factories import SEED_BODY
from tests.harness import Harness, started
from trackd.queue.sqlite import SQLiteQueue

pytestmark = pytest.mark.anyio

REUSED = (
    "This Idempotency-Key was already used for a different request (another body or endpoint); "
    "use a new key for a new request."
)
USER_BODY: dict[str, Any] = {"type": "customer", "customer_id": "123", "attributes": {"a": 1}}


def keyed(harness: Harness, key: str) -> dict[str, str]:
    return {**harness.headers(), "Idempotency-Key": key}


def reused(response: httpx.Response) -> dict[str, Any]:
    return failure(response, REUSED, "IdempotencyKeyReused", "Idempotency-Key")


async def conflicts(harness: Harness) -> str:
    metrics = await harness.client.get("/metrics", headers={"Authorization": "Bearer tok"})
    [line] = [
        line
        for line in metrics.text.splitlines()
        if line.startswith("trackd_idempotency_conflicts_total")
    ]
    return line


async def test_same_key_with_another_body_is_422_and_ingests_nothing(harness: Harness) -> None:
    first = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    assert first.status_code == 200
    other = copy.deepcopy(SEED_BODY)
    other["customer_id"] = "456"
    second = await harness.post(other, headers=keyed(harness, "order-42"))
    assert second.status_code == 422
    assert second.json() == reused(second)
    assert second.headers["x-request-id"] == first.headers["x-request-id"]
    assert [e.customer_id for e in await queued(harness)] == ["123"]
    # its quota is not spent, and the conflict is counted
    assert second.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    assert await conflicts(harness) == "trackd_idempotency_conflicts_total 1.0"
    # the first body under the key is still a replay
    replay = await harness.post(SEED_BODY, headers=keyed(harness, "order-42"))
    assert replay.status_code == 200
    assert replay.json() == first.json()


async def test_same_key_on_another_endpoint_is_422_in_either_order(harness: Harness) -> None:
    event = await harness.post(SEED_BODY, headers=keyed(harness, "k-event-first"))
    user = await harness.client.post(
        "/v1/customer/WS1", json=USER_BODY, headers=keyed(harness, "k-event-first")
    )
    assert (event.status_code, user.status_code) == (200, 422)
    assert user.json() == reused(user)

    user = await harness.client.post(
        "/v1/customer/WS1", json=USER_BODY, headers=keyed(harness, "k-user-first")
    )
    event = await harness.post(SEED_BODY, headers=keyed(harness, "k-user-first"))
    assert (user.status_code, event.status_code) == (200, 422)
    assert event.json() == reused(event)

    kinds = [(e.kind, e.customer_id) for e in await queued(harness)]
    assert kinds == [("event", "123"), ("customer", "123")]
    assert await conflicts(harness) == "trackd_idempotency_conflicts_total 2.0"


async def test_a_body_sent_identically_again_with_gzip_is_the_same_request(
    harness: Harness,
) -> None:
    raw = msgspec.json.encode(SEED_BODY)
    first = await harness.post(content=raw, headers=keyed(harness, "zip"))
    headers = {**keyed(harness, "zip"), "Content-Encoding": "gzip"}
    second = await harness.post(content=gzip.compress(raw), headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == success(first)
    assert len(await queued(harness)) == 1


async def test_concurrent_requests_with_one_key_and_two_bodies_store_one_and_refuse_one(
    tmp_path: Path,
) -> None:
    """On the SQLite queue both pass the first look before either commits (group commit): the
    queue's dedupe picks the winner, and the loser, another body, gets the 422."""
    async with started(tmp_path, SQLiteQueue(tmp_path / "queue.db")) as harness:
        headers = keyed(harness, "same-key")
        bodies = [SEED_BODY, {**SEED_BODY, "customer_id": "other"}]
        answers = await asyncio.gather(*(harness.post(b, headers=headers) for b in bodies))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 422]
        [winner] = [b for b, a in zip(bodies, answers, strict=True) if a.status_code == 200]
        assert [e.customer_id for e in await harness.queued()] == [winner["customer_id"]]
        after = await harness.app.limiter.peek("WS1", 30000)
        assert after.remaining == 30000 - 1  # the 422 gave its quota back
