"""Two `trackd serve` edges and two `trackd worker` processes on the real NATS JetStream,
PostgreSQL and Redis, spoken to over HTTP (issue "Scale-out", its five promises)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.contracts import postgres_db
from tests.scaleout.deployment import ENGINES, Deployment, start_engine, stop_engine
from tests.services import nats_available, needs_service, port_open, redis_available

pytestmark = [
    pytest.mark.e2e,
    needs_service("postgresql", postgres_db.available),
    needs_service("nats", nats_available),
    needs_service("redis", redis_available),
    pytest.mark.timeout(300),
]

LIMIT = 1000


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("scaleout"))
    try:
        d.cli("migrate")
        d.keys = {}  # type: ignore[attr-defined]
        for workspace, extra in (("SO1", []), ("SO2", ["--rate-limit", str(LIMIT)])):
            created = json.loads(d.cli("workspace", "create", "--id", workspace, "--json", *extra))
            d.keys[workspace] = created["api_key"]  # type: ignore[attr-defined]
        d.a, d.b = d.edge(), d.edge()  # type: ignore[attr-defined]
        d.workers = [d.worker(), d.worker()]  # type: ignore[attr-defined]
        yield d
    finally:
        for engine in ENGINES:  # whatever happened, leave the machine's engines running
            if not port_open(ENGINES[engine]["port"]):
                start_engine(engine)
        d.close()


def _body(customer: str, actions: int = 1) -> dict[str, Any]:
    return {
        "type": "event",
        "customer_id": customer,
        "actions": [{"action": "Scaled", "attributes": {"n": i}} for i in range(actions)],
    }


async def _post(
    client: httpx.AsyncClient, url: str, ws: str, key: str, body: Any
) -> httpx.Response:
    return await client.post(f"{url}/v1/event/{ws}", json=body, auth=(ws, key))


def _export_ids(d: Deployment, workspace: str) -> Counter[str]:
    out = d.base / f"export-{uuid.uuid4().hex}.ndjson"
    d.cli("events", "export", workspace, "--out", str(out))
    return Counter(json.loads(line)["event_id"] for line in out.read_text().splitlines())


async def _drained(d: Deployment, workspace: str, seconds: float = 60) -> dict[str, Any]:
    key = d.keys[workspace]  # type: ignore[attr-defined]
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=d.b.url, auth=(workspace, key)) as client:  # type: ignore[attr-defined]
        while True:
            stats = (await client.get(f"/api/workspaces/{workspace}/stats")).json()
            if stats["lag_events"] == 0 or time.monotonic() > deadline:
                return stats
            await anyio.sleep(0.2)


def _exactly_once(ids: Counter[str], accepted: dict[str, int]) -> dict[str, list[str]]:
    """Every event of every 200 stored once: lost and duplicated event ids."""
    expected = {f"{rid}-{i}" for rid, n in accepted.items() for i in range(n)}
    return {
        "lost": sorted(expected - set(ids)),
        "duplicated": sorted(e for e in expected if ids[e] > 1),
    }


@pytest.mark.anyio
async def test_events_posted_to_one_edge_are_readable_through_the_other_within_two_seconds(
    deployment: Deployment,
) -> None:
    d, key, customer = deployment, deployment.keys["SO1"], f"u-{uuid.uuid4().hex}"  # type: ignore[attr-defined]
    async with httpx.AsyncClient(timeout=10) as client:
        sent = await _post(client, d.a.url, "SO1", key, _body(customer))  # type: ignore[attr-defined]
        assert sent.status_code == 200
        accepted_at = time.monotonic()
        request_id = sent.json()["request_id"]
        while True:
            read = await client.get(
                f"{d.b.url}/api/workspaces/SO1/events",  # type: ignore[attr-defined]
                params={"customer_id": customer},
                auth=("SO1", key),
            )
            if read.json()["events"] or time.monotonic() - accepted_at > 2:
                break
            await anyio.sleep(0.05)
    assert time.monotonic() - accepted_at <= 2
    [event] = read.json()["events"]
    assert (event["event_id"], event["customer_id"], event["action"]) == (
        f"{request_id}-0",
        customer,
        "Scaled",
    )


@pytest.mark.anyio
async def test_the_rate_limit_holds_across_both_edges(deployment: Deployment) -> None:
    d, key = deployment, deployment.keys["SO2"]  # type: ignore[attr-defined]
    statuses: Counter[int] = Counter()
    limiter = anyio.Semaphore(32)

    async def one(client: httpx.AsyncClient, url: str, n: int) -> None:
        async with limiter:
            response = await _post(client, url, "SO2", key, _body(f"r{n}"))
            statuses[response.status_code] += 1

    async with httpx.AsyncClient(timeout=30) as client, anyio.create_task_group() as group:
        for n in range(1400):
            group.start_soon(one, client, (d.a.url, d.b.url)[n % 2], n)  # type: ignore[attr-defined]
    assert statuses[200] <= LIMIT * 1.01
    assert statuses[200] == LIMIT  # the window is one atomic Redis script: exact
    assert statuses[429] == 1400 - LIMIT


@pytest.mark.anyio
async def test_a_regenerated_key_is_refused_by_both_edges_within_one_second(
    deployment: Deployment,
) -> None:
    d, old = deployment, deployment.keys["SO1"]  # type: ignore[attr-defined]
    new = json.loads(d.cli("key", "regenerate", "SO1", "--json"))["api_key"]
    changed_at = time.monotonic()
    d.keys["SO1"] = new  # type: ignore[attr-defined]
    refused: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        while len(refused) < 2 and time.monotonic() - changed_at < 3:
            for url in (d.a.url, d.b.url):  # type: ignore[attr-defined]
                if url not in refused:
                    response = await _post(client, url, "SO1", old, _body("k"))
                    if response.status_code == 401:
                        refused[url] = time.monotonic() - changed_at
            await anyio.sleep(0.05)
        for url in (d.a.url, d.b.url):  # type: ignore[attr-defined]
            assert (await _post(client, url, "SO1", new, _body("k"))).status_code == 200
    assert sorted(refused) == sorted([d.a.url, d.b.url])  # type: ignore[attr-defined]
    assert max(refused.values()) <= 1.0


@pytest.mark.anyio
async def test_kill_9_of_a_worker_mid_batch_loses_and_duplicates_nothing(
    deployment: Deployment,
) -> None:
    d, key = deployment, deployment.keys["SO1"]  # type: ignore[attr-defined]
    accepted: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for n in range(60):
            url = (d.a.url, d.b.url)[n % 2]  # type: ignore[attr-defined]
            response = await _post(client, url, "SO1", key, _body(f"k9-{n % 7}", 100))
            assert response.status_code == 200
            accepted[response.json()["request_id"]] = 100
            if n == 30:
                d.workers[0].kill()  # type: ignore[attr-defined]
    d.workers[0] = d.worker()  # type: ignore[attr-defined]
    stats = await _drained(d, "SO1")
    assert stats["lag_events"] == 0
    assert _exactly_once(_export_ids(d, "SO1"), accepted) == {"lost": [], "duplicated": []}


class Load:
    """Single-event requests at both edges until stopped; every outcome with its time."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.outcomes: list[tuple[float, int, str, str | None]] = []  # t, status, rid, retry
        self.running = True

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10) as client, anyio.create_task_group() as group:
            for lane in range(4):
                group.start_soon(self._lane, client, lane)

    async def _lane(self, client: httpx.AsyncClient, lane: int) -> None:
        url = (self.d.a.url, self.d.b.url)[lane % 2]  # type: ignore[attr-defined]
        n = 0
        while self.running:
            n += 1
            try:
                response = await _post(
                    client,
                    url,
                    "SO1",
                    self.d.keys["SO1"],
                    _body(f"o{lane}-{n}"),  # type: ignore[attr-defined]
                )
            except httpx.TransportError:
                self.outcomes.append((time.monotonic(), 0, "", None))
            else:
                rid = response.json().get("request_id") or response.headers["x-request-id"]
                retry = response.headers.get("retry-after")
                self.outcomes.append((time.monotonic(), response.status_code, rid, retry))
            await anyio.sleep(0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("engine", ["postgresql", "nats", "redis"])
async def test_an_engine_down_for_ten_seconds_gives_503_never_a_lie_and_recovers(
    deployment: Deployment, engine: str
) -> None:
    load = Load(deployment)
    async with anyio.create_task_group() as group:
        group.start_soon(load.run)
        await anyio.sleep(1.5)
        await anyio.to_thread.run_sync(stop_engine, engine)
        stopped = time.monotonic()
        await anyio.sleep(10)
        restarting = time.monotonic()
        await anyio.to_thread.run_sync(start_engine, engine)
        started = time.monotonic()  # the engine answers on its port again
        await anyio.sleep(6)
        load.running = False
    statuses = Counter(status for _, status, _, _ in load.outcomes)
    assert set(statuses) <= {200, 503}, statuses
    assert all(retry is not None for _, status, _, retry in load.outcomes if status == 503)
    during = [s for t, s, _, _ in load.outcomes if stopped + 1 < t < restarting]
    after = [t for t, s, _, _ in load.outcomes if t > restarting and s == 200]
    if engine == "postgresql":  # the queue still makes writes durable: edges keep accepting
        assert during and set(during) == {200}
    else:  # no write can be made durable, or the limit enforced: 503, never a 200
        assert during and set(during) == {503}
    assert after and after[0] - started <= 5.0
    accepted = {rid: 1 for _, status, rid, _ in load.outcomes if status == 200}
    stats = await _drained(deployment, "SO1", seconds=90)
    assert stats["lag_events"] == 0
    ids = _export_ids(deployment, "SO1")
    broken = _exactly_once(ids, accepted)
    when = {rid: round(t - stopped, 2) for t, _, rid, _ in load.outcomes}
    assert broken == {"lost": [], "duplicated": []}, {
        e: when.get(e.rsplit("-", 1)[0]) for e in broken["lost"] + broken["duplicated"]
    }


def test_deployment_logs_are_kept_for_a_failed_run(deployment: Deployment) -> None:
    logs = sorted(Path(deployment.base).glob("*.log"))
    assert len(logs) >= 4
