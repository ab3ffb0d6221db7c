"""Bulk Import and Track Device in scale-out: two `trackd serve` edges and two `trackd worker`
processes on the real NATS JetStream, PostgreSQL and Redis, a worker killed with SIGKILL while
bulks are in hand. Every element of every accepted bulk applies once: nothing lost, nothing
doubled, no half-applied bulk. No engine is stopped here."""

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

WS = "SOBULK"
BULKS = 16
USERS = 10  # per bulk: a customer, an event element of ACTIONS actions and a device each
ACTIONS = 5


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("scaleout-bulk"))
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


def _bulk(n: int) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    for u in range(USERS):
        customer = f"b{n}-u{u}"
        elements.append({"type": "customer", "customer_id": customer, "attributes": {"n": n}})
        elements.append(
            {"type": "event", "customer_id": customer,
             "actions": [{"action": "Imported", "attributes": {"i": i}} for i in range(ACTIONS)]}
        )  # fmt: skip
        elements.append(
            {"type": "device", "customer_id": customer, "device_id": f"phone-{customer}",
             "attributes": {"platform": "ANDROID", "push_id": f"push-{customer}"}}
        )  # fmt: skip
    return {"type": "transition", "elements": elements}


def _export(d: Deployment) -> list[dict[str, Any]]:
    out = d.base / f"export-{uuid.uuid4().hex}.ndjson"
    d.cli("events", "export", WS, "--out", str(out))
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.anyio
async def test_kill_9_of_a_worker_mid_bulk_loses_doubles_and_half_applies_nothing(
    deployment: Deployment,
) -> None:
    d = deployment
    key = d.key  # type: ignore[attr-defined]
    urls = (d.a.url, d.b.url)  # type: ignore[attr-defined]
    accepted: dict[str, int] = {}  # request id -> bulk number
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(BULKS):
            response = await client.post(
                f"{urls[n % 2]}/v1/transition/{WS}", json=_bulk(n), auth=(WS, key)
            )
            assert response.status_code == 200, response.text
            accepted[response.headers["x-request-id"]] = n
            if n == BULKS // 2:
                await anyio.to_thread.run_sync(d.wait_for_a_batch_in_hand)
                d.workers[0].kill()  # type: ignore[attr-defined]
    d.workers[0] = d.worker()  # type: ignore[attr-defined]

    async with httpx.AsyncClient(base_url=urls[1], auth=(WS, key), timeout=30) as reader:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            stats = (await reader.get(f"/api/workspaces/{WS}/stats")).json()
            if stats.get("processed_events") == BULKS * USERS * ACTIONS:
                break
            await anyio.sleep(0.3)
        for n in (0, BULKS // 2, BULKS - 1):  # whole profiles, devices with their push ids
            for u in (0, USERS - 1):
                customer = f"b{n}-u{u}"
                user = (await reader.get(f"/api/workspaces/{WS}/users/{customer}")).json()
                assert (user["attributes"], user["event_count"]) == ({"n": n}, ACTIONS), user
                assert [(x["device_id"], x.get("push_id")) for x in user["devices"]] == [
                    (customer, None),
                    (f"phone-{customer}", f"push-{customer}"),
                ]
        issues = (await reader.get(f"/api/workspaces/{WS}/issues")).json()
        assert issues["issues"] == []

    events = _export(d)
    ids = Counter(e["event_id"] for e in events)
    expected = {
        f"{rid}-{3 * u + 1}-{i}" for rid in accepted for u in range(USERS) for i in range(ACTIONS)
    }
    assert sorted(expected - set(ids)) == []  # nothing lost
    assert sorted(e for e, count in ids.items() if count > 1) == []  # nothing doubled
    assert set(ids) == expected
