"""Bulk Import against the real `trackd serve`, on both backends (embedded SQLite; scale-out on
NATS JetStream, PostgreSQL and Redis): a bulk's users, events and devices readable through the
read API, applied in order, its invalid elements reported as warnings and issues."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.data_api import BACKENDS, Backend, backend_fixture, workspace

pytestmark = [pytest.mark.e2e, pytest.mark.anyio, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    yield from backend_fixture(request, tmp_path_factory)


USERS = 20


def elements() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n in range(USERS):
        customer = f"user-{n}"
        out.append({"type": "customer", "customer_id": customer, "attributes": {"n": n}})
        out.append(
            {"type": "event", "customer_id": customer,
             "actions": [{"action": "Imported", "attributes": {"n": n}}, {"action": "Paid"}]}
        )  # fmt: skip
        out.append(
            {"type": "device", "customer_id": customer, "device_id": f"phone-{n}",
             "attributes": {"platform": "iOS", "push_id": f"p-{n}", "model": "iPhone"}}
        )  # fmt: skip
    out.append({"type": "event", "customer_id": "user-0", "actions": []})  # invalid
    return out


async def test_a_bulks_users_events_and_devices_are_readable(backend: Backend) -> None:
    async with httpx.AsyncClient(base_url=backend.url, timeout=30) as client:
        ws = await workspace(backend, client)
        body = {"type": "transition", "elements": elements()}
        response = await ws.post(f"/v1/transition/{ws.id}", body)
        assert response.status_code == 200, response.text
        request_id = response.headers["x-request-id"]
        assert response.json() == {
            "status": "success",
            "message": "Your request has been accepted and will be processed soon.",
            "request_id": request_id,
            "warnings": [
                {"index": 3 * USERS, "reason": "invalid_element", "type": "event",
                 "message": "actions can not be empty Array"}
            ],
        }  # fmt: skip
        assert (
            response.headers["x-ratelimit-limit"],
            response.headers["x-ratelimit-remaining"],
        ) == ("60000", str(60000 - 2 * USERS))
        query = await ws.post(
            "/v1/transition", {"type": "transition", "elements": elements()[:1]}, app_id=ws.id
        )
        assert query.status_code == 200
        stats = await ws.until("stats", lambda s: s.get("processed_events") == 2 * USERS)
        assert stats["processed_events"] == 2 * USERS
        for n in (0, USERS - 1):
            user = await ws.until(f"users/user-{n}", lambda u: len(u["devices"]) == 2)
            assert (user["attributes"], user["event_count"]) == ({"n": n}, 2)
            phone = next(d for d in user["devices"] if d["device_id"] == f"phone-{n}")
            assert (phone["platform"], phone["push_id"], phone["model"]) == (
                "iOS",
                f"p-{n}",
                "iPhone",
            )
            page = (await ws.get("events", customer_id=f"user-{n}")).json()
            assert [(e["event_id"], e["action"]) for e in page["events"]] == [
                (f"{request_id}-{3 * n + 1}-1", "Paid"),
                (f"{request_id}-{3 * n + 1}-0", "Imported"),
            ]
        issues = await ws.until("issues", lambda i: len(i["issues"]) == 1)
        assert [(i["request_id"], i["index"], i["reason"]) for i in issues["issues"]] == [
            (request_id, 3 * USERS, "invalid_element")
        ]
