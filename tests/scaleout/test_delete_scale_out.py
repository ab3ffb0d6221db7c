"""Delete User in scale-out: two `trackd serve` edges and two `trackd worker` processes on the
real NATS JetStream, PostgreSQL and Redis. Deletes sent through both edges, in queue order with
the workspace's events: a buffer of 0 removes each user whole at once; a 2 s buffer shows
`deletion_scheduled_at`, then a worker's sweep removes it. The kill -9 scenario (a worker
killed while deletes are in hand) is `test_kill_9_of_a_worker_mid_delete_...`. No engine is
stopped here."""

from __future__ import annotations

import json
import time
import uuid
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

WS = "SODELETE"
WS_BUFFERED = "SODELBUF"
USERS = 12
ACTIONS = 10


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("scaleout-delete"))
    try:
        d.cli("migrate")
        keys = {}
        for ws, buffer in ((WS, "0"), (WS_BUFFERED, "2")):
            created = json.loads(
                d.cli("workspace", "create", "--id", ws, "--delete-buffer", buffer, "--json")
            )
            keys[ws] = created["api_key"]
        d.keys = keys  # type: ignore[attr-defined]
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


def _export(d: Deployment, ws: str) -> list[dict[str, Any]]:
    out = d.base / f"export-{uuid.uuid4().hex}.ndjson"
    d.cli("events", "export", ws, "--out", str(out))
    return [json.loads(line) for line in out.read_text().splitlines()]


class Client:
    def __init__(self, d: Deployment, ws: str, client: httpx.AsyncClient) -> None:
        self.urls = (d.a.url, d.b.url)  # type: ignore[attr-defined]
        self.ws, self.key, self.client = ws, d.keys[ws], client  # type: ignore[attr-defined]
        self.sent = 0

    async def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        url = self.urls[self.sent % 2]
        self.sent += 1
        return await self.client.post(
            f"{url}{path}", json=body, params=params, auth=(self.ws, self.key)
        )

    async def user(self, customer: str) -> httpx.Response:
        return await self.client.get(
            f"{self.urls[1]}/api/workspaces/{self.ws}/users/{customer}", auth=(self.ws, self.key)
        )

    async def until(self, customer: str, done: Any, seconds: float = 60) -> httpx.Response:
        deadline = time.monotonic() + seconds
        while True:
            response = await self.user(customer)
            if done(response) or time.monotonic() > deadline:
                return response
            await anyio.sleep(0.2)


async def _delete(c: Client, customer: str) -> None:
    # the edge's not-found check reads the store: wait until the user is there
    await c.until(customer, lambda r: r.status_code == 200)
    response = await c.post(
        "/v1/customer/delete", {"identity_type": "customer_id", "identity_value": customer},
        app_id=c.ws,
    )  # fmt: skip
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_deletes_through_both_edges_remove_users_whole(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS, client)
        for u in range(USERS):
            assert (await c.post(f"/v1/event/{WS}", _event(f"u{u}"))).status_code == 200
        for u in range(0, USERS, 2):  # every other user
            await _delete(c, f"u{u}")
        for u in range(USERS):
            expected = 404 if u % 2 == 0 else 200
            response = await c.until(f"u{u}", lambda r, e=expected: r.status_code == e)
            assert response.status_code == expected, (u, response.text)
    owners = {e["customer_id"] for e in _export(d, WS)}
    assert owners == {f"u{u}" for u in range(1, USERS, 2)}


@pytest.mark.anyio
async def test_a_delete_through_the_other_edge_right_after_the_200_finds_the_user(
    deployment: Deployment,
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS, client)
        for u in range(6):  # the event through one edge, the delete at once through the other
            assert (await c.post(f"/v1/event/{WS}", _event(f"ryw{u}"))).status_code == 200
            response = await c.post(
                "/v1/customer/delete",
                {"identity_type": "customer_id", "identity_value": f"ryw{u}"},
                app_id=WS,
            )
            assert response.status_code == 200, response.text
        for u in range(6):
            response = await c.until(f"ryw{u}", lambda r: r.status_code == 404)
            assert response.status_code == 404


@pytest.mark.anyio
async def test_get_user_through_the_other_edge_right_after_the_200_finds_the_user(
    deployment: Deployment,
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS_BUFFERED, client)
        for u in range(6):  # Track User through one edge, Get User at once through the other
            user = {"type": "customer", "customer_id": f"get{u}", "attributes": {"n": u}}
            assert (await c.post(f"/v1/customer/{WS_BUFFERED}", user)).status_code == 200
            ident = {"identifier_type": "customer_id", "identifier": f"get{u}"}
            response = await c.post(
                "/v1/customers/export", {"data": {"identifiers": [ident]}}, app_id=WS_BUFFERED
            )
            assert response.status_code == 200, response.text
            assert response.json()["data"]["users_not_found"] == []
            assert response.json()["data"]["users"][0]["user_attributes"]["n"] == u


@pytest.mark.anyio
async def test_a_buffered_delete_is_swept_by_a_worker(deployment: Deployment) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS_BUFFERED, client)
        for u in ("keep", "drop"):
            assert (await c.post(f"/v1/event/{WS_BUFFERED}", _event(u))).status_code == 200
        await _delete(c, "drop")
        shown = await c.until("drop", lambda r: "deletion_scheduled_at" in r.json())
        assert shown.json()["deletion_scheduled_at"] > 0
        assert (await c.until("drop", lambda r: r.status_code == 404)).status_code == 404
        assert (await c.user("keep")).status_code == 200
    assert {e["customer_id"] for e in _export(d, WS_BUFFERED)} == {"keep"}


@pytest.mark.anyio
async def test_an_erasure_through_either_edge_leaves_only_its_audit_record(
    deployment: Deployment,
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS, client)
        for u, email in (("er1", "er@example.com"), ("er2", "er@example.com"), ("er3", "x@y")):
            user = {"type": "customer", "customer_id": u, "attributes": {"email": email}}
            assert (await c.post(f"/v1/customer/{WS}", user)).status_code == 200
            assert (await c.post(f"/v1/event/{WS}", _event(u))).status_code == 200
        body = {
            "request_type": "erasure",
            "identities": [{"identity_type": "email", "identity_value": "er@example.com"}],
        }
        response = await c.post(f"/v1/opengdpr_requests/{WS}", body)
        assert response.status_code == 200, response.text
        for u in ("er1", "er2"):
            assert (await c.until(u, lambda r: r.status_code == 404)).status_code == 404
        assert (await c.until("er3", lambda r: r.status_code == 200)).status_code == 200
        listed = await client.get(f"{d.a.url}/api/workspaces/{WS}/erasures", auth=(WS, c.key))  # type: ignore[attr-defined]
        [record] = [
            r for r in listed.json()["erasures"] if r["request_id"] == response.json()["request_id"]
        ]
        assert (record["users"], record["events"]) == (2, 2 * ACTIONS)
        assert "er@example.com" not in listed.text
    assert not {"er1", "er2"} & {e["customer_id"] for e in _export(d, WS)}


@pytest.mark.anyio
async def test_kill_9_of_a_worker_mid_delete_loses_and_half_deletes_nothing(
    deployment: Deployment,
) -> None:
    """Not run by the delete helper (the lead runs kill -9 scenarios): users deleted while a
    worker is killed with SIGKILL holding a batch are each gone whole; the others whole."""
    d = deployment
    async with httpx.AsyncClient(timeout=30) as client:
        c = Client(d, WS, client)
        names = [f"k{u}" for u in range(USERS)]
        for name in names:
            assert (await c.post(f"/v1/event/{WS}", _event(name))).status_code == 200
        for i, name in enumerate(names[::2]):
            await _delete(c, name)
            assert (await c.post(f"/v1/event/{WS}", _event(names[2 * i + 1]))).status_code == 200
            if i == USERS // 4:
                await anyio.to_thread.run_sync(d.wait_for_a_batch_in_hand)
                d.workers[0].kill()  # type: ignore[attr-defined]
        d.workers[0] = d.worker()  # type: ignore[attr-defined]
        for i, name in enumerate(names):
            expected = 404 if i % 2 == 0 else 200
            response = await c.until(name, lambda r, e=expected: r.status_code == e, 90)
            assert response.status_code == expected, (name, response.text)
            if expected == 200:
                assert response.json()["event_count"] == 2 * ACTIONS
    events = [e for e in _export(d, WS) if e["customer_id"].startswith("k")]
    assert {e["customer_id"] for e in events} == set(names[1::2])
    assert len(events) == len({e["event_id"] for e in events}) == len(names[1::2]) * 2 * ACTIONS
