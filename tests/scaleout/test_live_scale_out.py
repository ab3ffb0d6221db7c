"""The live stream and the request log in scale-out (issue 13): two `trackd serve` edges and
two `trackd worker` processes on the real NATS JetStream, PostgreSQL and Redis. Events sent to
either edge, processed by either worker, reach a live stream on each edge, each once and in
order; a stream resumed on the other edge with Last-Event-ID gets exactly the rest; both edges'
requests are in one request log. No engine is stopped here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from tests.contracts import postgres_db
from tests.e2e.sse import Stream, live
from tests.scaleout.deployment import Deployment
from tests.services import nats_available, needs_service, redis_available

pytestmark = [
    pytest.mark.e2e,
    needs_service("postgresql", postgres_db.available),
    needs_service("nats", nats_available),
    needs_service("redis", redis_available),
    pytest.mark.timeout(300),
]

WS = "SOLIVE"
REQUESTS = 20
ACTIONS = 5


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("scaleout-live"))
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


def _body(n: int) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": f"u{n % 3}",
        "actions": [{"action": "Live", "attributes": {"n": n, "i": i}} for i in range(ACTIONS)],
    }


@pytest.mark.anyio
async def test_events_from_both_edges_and_workers_reach_a_stream_on_each_edge_once_in_order(
    deployment: Deployment,
) -> None:
    d = deployment
    key = d.key  # type: ignore[attr-defined]
    urls = (d.a.url, d.b.url)  # type: ignore[attr-defined]
    total = REQUESTS * ACTIONS
    auth = httpx.BasicAuth(WS, key)
    async with (
        httpx.AsyncClient(base_url=urls[0], auth=auth) as on_a,
        httpx.AsyncClient(base_url=urls[1], auth=auth) as on_b,
        live(on_a, WS, {}) as stream_a,
        live(on_b, WS, {}) as stream_b,
    ):
        sent: list[str] = []
        for n in range(REQUESTS):
            client = (on_a, on_b)[n % 2]
            response = await client.post(f"/v1/event/{WS}", json=_body(n))
            assert response.status_code == 200, response.text
            sent.append(response.headers["x-request-id"])
        seen: dict[str, list[dict[str, Any]]] = {}

        async def collect(name: str, stream: Stream) -> None:
            seen[name] = await stream.messages(total, seconds=60)

        async with anyio.create_task_group() as group:
            group.start_soon(collect, "a", stream_a)
            group.start_soon(collect, "b", stream_b)

        events = []
        cursor = None
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = (await on_a.get(f"/api/workspaces/{WS}/events", params=params)).json()
            events += page["events"]
            cursor = page["next_cursor"]
            if cursor is None:
                break

        for messages in seen.values():
            ids = [int(m["id"]) for m in messages]
            assert ids == sorted(set(ids))  # in order, none twice
            assert {m["data"]["event_id"] for m in messages} == {e["event_id"] for e in events}
            assert {m["data"]["request_id"] for m in messages} == set(sent)
        assert len(events) == total
        assert [m["data"] for m in seen["a"]] == [m["data"] for m in seen["b"]]

        middle = seen["a"][total // 2 - 1]["id"]
        async with live(on_b, WS, {"Last-Event-ID": middle}) as resumed:
            rest = await resumed.messages(total - total // 2, seconds=30)
        assert [m["id"] for m in rest] == [m["id"] for m in seen["a"][total // 2 :]]

        logged = (await on_b.get(f"/api/workspaces/{WS}/requests", params={"limit": "1000"})).json()
        for _ in range(50):  # each edge writes its log within a second
            if len(logged["requests"]) >= REQUESTS:
                break
            await anyio.sleep(0.1)
            logged = (
                await on_b.get(f"/api/workspaces/{WS}/requests", params={"limit": "1000"})
            ).json()
        assert {r["request_id"] for r in logged["requests"]} == set(sent)
        assert all(r["status"] == 200 and r["event_count"] == ACTIONS for r in logged["requests"])
