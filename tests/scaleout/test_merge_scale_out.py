"""Merge Users in scale-out: two `trackd serve` edges and two `trackd worker` processes on the
real NATS JetStream, PostgreSQL and Redis, a worker killed with SIGKILL while merges are in
hand. Nothing lost, nothing doubled, no half-merged profile. No engine is stopped here."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.contracts import postgres_db
from tests.scaleout.deployment import Deployment
from tests.services import nats_available, needs_service, redis_available

pytestmark = [
    pytest.mark.e2e,
    needs_service("postgresql", postgres_db.available),
    needs_service("nats", nats_available),
    needs_service("redis", redis_available),
    pytest.mark.timeout(300),
]

WS = "SOMERGE"
PAIRS = 12  # u1 -> u0, u3 -> u2, ...
ACTIONS = 40


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("scaleout-merge"))
    try:
        d.cli("migrate")
        created = json.loads(d.cli("workspace", "create", "--id", WS, "--json"))
        d.key = created["api_key"]  # type: ignore[attr-defined]
        d.a, d.b = d.edge(), d.edge()  # type: ignore[attr-defined]
        d.workers = [d.worker(), d.worker()]  # type: ignore[attr-defined]
        yield d
    finally:
        d.close()
        d.delete_stream()


def _event(customer: str) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": customer,
        "actions": [{"action": "Scaled", "attributes": {"n": i}} for i in range(ACTIONS)],
    }


def _export(d: Deployment) -> list[dict[str, Any]]:
    out = d.base / f"export-{uuid.uuid4().hex}.ndjson"
    d.cli("events", "export", WS, "--out", str(out))
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.anyio
async def test_kill_9_of_a_worker_mid_merge_loses_doubles_and_half_merges_nothing(
    deployment: Deployment,
) -> None:
    d = deployment
    key = d.key  # type: ignore[attr-defined]
    urls = (d.a.url, d.b.url)  # type: ignore[attr-defined]
    accepted: dict[str, int] = {}  # request id -> events it carries
    merges: list[str] = []
    sent = 0

    async def post(client: httpx.AsyncClient, path: str, body: Any, **params: str) -> str:
        nonlocal sent
        url = urls[sent % 2]
        sent += 1
        response = await client.post(f"{url}{path}", json=body, params=params, auth=(WS, key))
        assert response.status_code == 200, response.text
        return str(response.json()["request_id"])

    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(2):  # two requests per user before the merges
            for u in range(2 * PAIRS):
                accepted[await post(client, f"/v1/event/{WS}", _event(f"u{u}"))] = ACTIONS
        for i in range(PAIRS):
            body = {"merge_data": [{"merged_user": f"u{2 * i + 1}", "retained_user": f"u{2 * i}"}]}
            merges.append(await post(client, "/v1/customer/merge", body, app_id=WS))
            # events for the merged id after its merge: they land on the retained profile
            accepted[await post(client, f"/v1/event/{WS}", _event(f"u{2 * i + 1}"))] = ACTIONS
            if i == PAIRS // 2:
                await anyio.to_thread.run_sync(d.wait_for_a_batch_in_hand)
                d.workers[0].kill()  # type: ignore[attr-defined]
    d.workers[0] = d.worker()  # type: ignore[attr-defined]

    expected_count = (
        2 * 2 * ACTIONS + ACTIONS + 2
    )  # both users' events, the later ones, the merge's
    async with httpx.AsyncClient(base_url=urls[1], auth=(WS, key), timeout=30) as reader:
        deadline = time.monotonic() + 90
        profiles: dict[int, Any] = {}
        while time.monotonic() < deadline:
            profiles = {
                i: (await reader.get(f"/api/workspaces/{WS}/users/u{2 * i + 1}")).json()
                for i in range(PAIRS)
            }
            if all(p.get("event_count") == expected_count for p in profiles.values()):
                break
            await anyio.sleep(0.3)

    for i, profile in profiles.items():  # each merged id reads as its retained profile, whole
        assert profile["customer_id"] == f"u{2 * i}", profile
        assert profile["aliases"] == [f"u{2 * i + 1}"]
        assert profile["event_count"] == expected_count

    events = _export(d)
    ids = Counter(e["event_id"] for e in events)
    expected = {f"{rid}-{n}" for rid, count in accepted.items() for n in range(count)}
    expected |= {f"{rid}-{tag}0" for rid in merges for tag in ("m", "r")}
    assert sorted(set(expected) - set(ids)) == []  # nothing lost
    assert sorted(e for e, n in ids.items() if n > 1) == []  # nothing doubled
    assert set(ids) == expected
    owners = Counter(e["customer_id"] for e in events)  # no event left on a merged id
    assert owners == Counter({f"u{2 * i}": expected_count for i in range(PAIRS)})
